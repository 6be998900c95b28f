import type { Command } from 'commander';

/** `configchain about`: what exists so far and how to try it (also what `npm start` shows until the node lands). */
export function registerStatusOfBuild(program: Command): void {
  program
    .command('about')
    .description('print what this build of ConfigChain contains and how to try it')
    .action(() => {
      console.log(ABOUT);
    });
}

const ABOUT = `ConfigChain — what exists in this build

  ledger model, RFC 9162 Merkle trees, SQLite store    npm test
  benchmarks                                            npm run bench -- ledger
`;
