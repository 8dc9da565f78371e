// JSON-lines event log and progress output: what a stage did, for people and for tests.
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface EventLog {
  /** Appends one event (with a timestamp) to the log. */
  event(type: string, data?: Record<string, unknown>): void;
  /** A progress line for people. */
  info(message: string): void;
}

export function eventLog(file: string | undefined, prefix = ''): EventLog {
  if (file) mkdirSync(dirname(file), { recursive: true });
  return {
    event(type, data = {}) {
      if (file) appendFileSync(file, JSON.stringify({ time: new Date().toISOString(), pid: process.pid, type, ...data }) + '\n');
    },
    info(message) {
      console.log(prefix ? `${prefix} ${message}` : message);
    },
  };
}
