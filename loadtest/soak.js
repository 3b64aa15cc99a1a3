// Soak (short): a moderate steady rate (RATE, default 30/s) for DURATION
// (default 10m), to show leaks and slow drifts.
import { thresholds, prepare, journey, num } from './lib/suite.js';

const rate = num('RATE', 30);

export const options = {
  scenarios: {
    soak: {
      executor: 'constant-arrival-rate',
      rate,
      timeUnit: '1s',
      duration: __ENV.DURATION || '10m',
      preAllocatedVUs: Math.max(10, rate),
      maxVUs: rate * 4,
    },
  },
  thresholds,
};

export function setup() {
  return prepare(20);
}

export default journey;
