// JSON-lines event log and progress output: what a stage did, for people and for tests.
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { bytes } from './fs';

export interface EventLog {
  /** Appends one event (with a timestamp) to the log. */
  event(type: string, data?: Record<string, unknown>): void;
  /** A progress line for people. */
  info(message: string): void;
}

/** Events go to `file` (its directory made by the first event: a run that logs none writes nothing). */
export function eventLog(file: string | undefined, prefix = ''): EventLog {
  let made = false;
  return {
    event(type, data = {}) {
      if (!file) return;
      if (!made) {
        mkdirSync(dirname(file), { recursive: true });
        made = true;
      }
      appendFileSync(file, JSON.stringify({ time: new Date().toISOString(), pid: process.pid, type, ...data }) + '\n');
    },
    info(message) {
      console.log(prefix ? `${prefix} ${message}` : message);
    },
  };
}

/** `850 ms`, `12.3 s`, `4 min 05 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

export interface Progress {
  /** Counts work done: bytes and/or items. */
  add(bytes: number, items?: number): void;
  stop(): void;
}

/**
 * Progress lines for long work, every `everyMs`: done of total, percent, rate, and what is left,
 * e.g. `… packages: 812 of 2,020 (1.2 GiB of 3.4 GiB, 35%), 45.6 MiB/s`.
 */
export function progress(info: (m: string) => void, what: string, total: { bytes?: number; items?: number }, everyMs = 5000): Progress {
  let b = 0;
  let n = 0;
  const t0 = Date.now();
  let shown = '';
  const timer = setInterval(() => {
    // Quiet while nothing moves (the work after the last download, say).
    if (`${b}/${n}` === shown) return;
    shown = `${b}/${n}`;
    const s = (Date.now() - t0) / 1000;
    const parts: string[] = [];
    if (total.items) parts.push(`${n.toLocaleString('en-US')} of ${total.items.toLocaleString('en-US')}`);
    if (total.bytes) parts.push(`${bytes(b)} of ${bytes(total.bytes)}, ${Math.min(100, Math.floor((100 * b) / total.bytes))}%`);
    else if (b) parts.push(bytes(b));
    info(`… ${what}: ${parts.join(' (')}${parts.length > 1 ? ')' : ''}${b && s > 0 ? `, ${bytes(b / s)}/s` : ''}`);
  }, everyMs);
  timer.unref();
  return {
    add(bytes, items = 0) {
      b += bytes;
      n += items;
    },
    stop: () => clearInterval(timer),
  };
}
