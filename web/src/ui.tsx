/**
 * Small shared pieces: the in-page router (history API under /ui/), notices for empty and error
 * states, hashes, times, and a hook for one async load with its loading and error states.
 */
import { type DependencyList, type MouseEvent, type ReactNode, useEffect, useState } from 'react';

export const base = '/ui';

/** The app path after /ui, e.g. "/ledger/5"; "/" for the network page. */
export function currentPath(): string {
  const path = window.location.pathname;
  const rest = path.startsWith(base) ? path.slice(base.length) : path;
  return rest === '' ? '/' : rest;
}

const listeners = new Set<() => void>();

export function navigate(to: string): void {
  window.history.pushState(null, '', base + to);
  for (const l of listeners) l();
  window.scrollTo(0, 0);
}

/** The current path and query, re-rendering on navigation and on the back button. */
export function useLocation(): { path: string; query: URLSearchParams } {
  const [, setTick] = useState(0);
  useEffect(() => {
    const update = () => setTick((t) => t + 1);
    listeners.add(update);
    window.addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      window.removeEventListener('popstate', update);
    };
  }, []);
  return { path: currentPath(), query: new URLSearchParams(window.location.search) };
}

export function Link({
  to,
  children,
  className,
  testId,
}: {
  readonly to: string;
  readonly children: ReactNode;
  readonly className?: string;
  readonly testId?: string;
}) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(to);
  };
  return (
    <a href={base + to} onClick={onClick} className={className} data-testid={testId}>
      {children}
    </a>
  );
}

export type Load<T> =
  | { readonly state: 'loading' }
  | { readonly state: 'error'; readonly error: unknown }
  | { readonly state: 'ok'; readonly value: T };

/** Runs `load` when the deps change; a newer run wins over an older one still in flight. */
export function useLoad<T>(load: () => Promise<T>, deps: DependencyList): Load<T> {
  const [result, setResult] = useState<Load<T>>({ state: 'loading' });
  useEffect(() => {
    let current = true;
    setResult((r) => (r.state === 'ok' ? r : { state: 'loading' }));
    load().then(
      (value) => {
        if (current) setResult({ state: 'ok', value });
      },
      (error: unknown) => {
        if (current) setResult({ state: 'error', error });
      },
    );
    return () => {
      current = false;
    };
    // biome-ignore lint/correctness/useExhaustiveDependencies: the caller names what the load depends on
  }, deps);
  return result;
}

export function Notice({
  kind,
  title,
  children,
  testId,
}: {
  readonly kind: 'empty' | 'error' | 'info' | 'loading';
  readonly title: string;
  readonly children?: ReactNode;
  readonly testId?: string;
}) {
  return (
    <div
      className={`notice notice-${kind}`}
      role={kind === 'error' ? 'alert' : 'status'}
      data-testid={testId}
    >
      <strong>{title}</strong>
      {children === undefined ? null : <div>{children}</div>}
    </div>
  );
}

export function Loading({ what }: { readonly what: string }) {
  return <Notice kind="loading" title={`Loading ${what}…`} />;
}

/** A hash shortened for tables, whole on hover and when copied. */
export function Hash({ value, full }: { readonly value: string; readonly full?: boolean }) {
  return (
    <code className="hash" title={value}>
      {full === true || value.length <= 16 ? value : `${value.slice(0, 12)}…`}
    </code>
  );
}

export function ago(ms: number, nowMs: number): string {
  const s = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function time(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
}

/** A clock that ticks once a second, for "... ago" labels. */
export function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  return now;
}

export const HEX64 = /^[0-9a-fA-F]{64}$/;
