/**
 * Progress of a long transfer (a publish upload, a device download) for a person at a terminal:
 * a cli-progress bar when the stream is a TTY, otherwise a plain line each time another tenth of
 * the bytes has passed (logs stay short and greppable). Commands with --json pass no progress at all.
 */
import cliProgress from 'cli-progress';

/** The stream a bar draws on: a TTY stream has isTTY true (process.stdout or process.stderr). */
export interface ProgressStream extends NodeJS.WritableStream {
  readonly isTTY?: boolean;
}

export interface ProgressOptions {
  /** What is moving, e.g. "upload to config server A". */
  readonly label: string;
  /** Total bytes; at least 0. */
  readonly total: number;
  readonly stream: ProgressStream;
  /** Where plain lines go when the stream is not a TTY (console.log, the device's log). */
  readonly line: (text: string) => void;
}

export interface Progress {
  /** Bytes done so far; may go down when a transfer restarts from zero. */
  update(done: number): void;
  /** Ends the bar (or prints the last line if 100% was not printed yet). */
  stop(): void;
}

/** Plain lines at most once per tenth of the total. */
const STEPS = 10;

export function startProgress(options: ProgressOptions): Progress {
  const total = Math.max(0, options.total);
  if (options.stream.isTTY === true) {
    const bar = new cliProgress.SingleBar(
      {
        stream: options.stream as NodeJS.WritableStream,
        format: `${options.label} [{bar}] {percentage}% | {doneMiB}/{totalMiB} MiB | {duration_formatted}`,
        hideCursor: true,
        clearOnComplete: false,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { doneMiB: mib(0), totalMiB: mib(total) });
    let stopped = false;
    return {
      update(done) {
        if (!stopped) bar.update(Math.min(done, total), { doneMiB: mib(done) });
      },
      stop() {
        if (stopped) return;
        stopped = true;
        bar.stop();
      },
    };
  }
  let printed = -1;
  let last = 0;
  const print = (done: number) => {
    const step = total === 0 ? STEPS : Math.floor((Math.min(done, total) * STEPS) / total);
    if (step <= printed) return;
    printed = step;
    options.line(`${options.label}: ${step * STEPS}% (${done} of ${total} bytes)`);
  };
  return {
    update(done) {
      // A restart from zero starts the tenths again, so the log shows the second pass too.
      if (done < last) printed = Math.floor((Math.min(done, total) * STEPS) / Math.max(total, 1)) - 1;
      last = done;
      print(done);
    },
    stop() {
      print(last);
    },
  };
}

/**
 * An onProgress(done, total) callback (what the device agent calls) that starts a progress
 * display on the first call and stops it when done reaches total.
 */
export function progressCallback(
  label: string,
  stream: ProgressStream,
  line: (text: string) => void,
): (done: number, total: number) => void {
  let current: { progress: Progress; total: number } | null = null;
  return (done, total) => {
    if (current === null || current.total !== total) {
      current?.progress.stop();
      current = { progress: startProgress({ label, total, stream, line }), total };
    }
    current.progress.update(done);
    if (done >= total) {
      current.progress.stop();
      current = null;
    }
  };
}

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}
