/**
 * The dashboard's entry: the layout, the navigation and the page for the current address.
 * Served by every validator at /ui; every call goes to the validator that served the page.
 */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { LiveProvider, useLive } from './live.tsx';
import { ConfigsPage } from './pages/Configs.tsx';
import { FleetPage } from './pages/Fleet.tsx';
import { LedgerPage } from './pages/Ledger.tsx';
import { NetworkPage } from './pages/Network.tsx';
import { VerifyPage } from './pages/Verify.tsx';
import { Link, Notice, useLocation } from './ui.tsx';
import './styles.css';

const pages = [
  { to: '/', label: 'Network', match: (p: string) => p === '/' || p === '/network' },
  { to: '/ledger', label: 'Ledger', match: (p: string) => p.startsWith('/ledger') },
  { to: '/configs', label: 'Configurations', match: (p: string) => p.startsWith('/configs') },
  { to: '/fleet', label: 'Fleet', match: (p: string) => p.startsWith('/fleet') },
  { to: '/verify', label: 'Verify', match: (p: string) => p.startsWith('/verify') },
] as const;

function Page({ path, query }: { readonly path: string; readonly query: URLSearchParams }) {
  if (path === '/' || path === '/network') return <NetworkPage />;
  if (path.startsWith('/ledger')) return <LedgerPage path={path} query={query} />;
  if (path.startsWith('/configs')) return <ConfigsPage path={path} />;
  if (path.startsWith('/fleet')) return <FleetPage />;
  if (path.startsWith('/verify')) return <VerifyPage query={query} />;
  return (
    <Notice kind="empty" title={`There is no page ${path}`}>
      <Link to="/">Go to the network overview</Link>
    </Notice>
  );
}

function Header() {
  const live = useLive();
  const { path } = useLocation();
  const s = live.status;
  return (
    <header className="top">
      <div className="brand">
        ConfigChain
        <span
          className={`dot dot-${live.connection}`}
          title={`updates: ${live.connection}`}
          data-testid="connection"
          data-state={live.connection}
        />
        <span className="muted small">
          {s === null ? 'connecting…' : `validator ${s.id} · height ${s.height} · view ${s.view}`}
        </span>
      </div>
      <nav className="tabs">
        {pages.map((p) => (
          <Link
            key={p.to}
            to={p.to}
            className={p.match(path) ? 'active' : ''}
            testId={`nav-${p.label.toLowerCase()}`}
          >
            {p.label}
          </Link>
        ))}
      </nav>
    </header>
  );
}

function App() {
  const { path, query } = useLocation();
  return (
    <LiveProvider>
      <Header />
      <main>
        <Page path={path} query={query} />
      </main>
    </LiveProvider>
  );
}

const root = document.getElementById('root');
if (root === null) throw new Error('index.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
