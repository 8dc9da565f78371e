// Compose ids in tests without the wall clock: a compose's respin counts up within its day (UTC),
// so the compose after `prev` is `prev`'s next respin, or respin 0 of a later day when the run
// crossed midnight between the two.
import { expect } from 'vitest';
import { parseComposeId } from '@rocky/config';

/** `next` is the compose id that follows `prev` (same label and kind). */
export function expectNextCompose(next: string, prev: string): void {
  const [a, b] = [parseComposeId(prev), parseComposeId(next)];
  expect(a, prev).toBeDefined();
  expect(b, next).toBeDefined();
  expect(b!.label).toBe(a!.label);
  if (b!.date.getTime() === a!.date.getTime()) expect(b!.respin, `${next} after ${prev}`).toBe(a!.respin + 1);
  else {
    expect(b!.date.getTime(), `${next} after ${prev}`).toBeGreaterThan(a!.date.getTime());
    expect(b!.respin, `${next}: the first compose of its day`).toBe(0);
  }
}
