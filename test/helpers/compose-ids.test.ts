import { describe, expect, it } from 'vitest';
import { expectNextCompose } from './compose-ids';

describe('expectNextCompose', () => {
  it('the same day counts the respin up; a later day starts at 0', () => {
    expectNextCompose('Rocky-9-updates-20261207.1', 'Rocky-9-updates-20261207.0');
    expectNextCompose('Rocky-9-updates-20261208.0', 'Rocky-9-updates-20261207.0');
  });
  it('refuses a skipped or repeated respin, a later day not at 0, an earlier day, another label', () => {
    for (const [next, prev] of [
      ['Rocky-9-updates-20261207.2', 'Rocky-9-updates-20261207.0'],
      ['Rocky-9-updates-20261207.0', 'Rocky-9-updates-20261207.0'],
      ['Rocky-9-updates-20261208.1', 'Rocky-9-updates-20261207.0'],
      ['Rocky-9-updates-20261206.0', 'Rocky-9-updates-20261207.0'],
      ['Rocky-9.7-20261207.1', 'Rocky-9-updates-20261207.0'],
    ])
      expect(() => expectNextCompose(next, prev), `${next} after ${prev}`).toThrow();
  });
});
