// Load: a steady arrival rate of customer journeys (browse + order).
// RATE journeys per second for DURATION (defaults 30/s for 30s: each
// journey places an order, and two cores sustain about 40 orders a second).
import { thresholds, prepare, journey, num } from './lib/suite.js';

const rate = num('RATE', 30);

export const options = {
  scenarios: {
    orders: {
      executor: 'constant-arrival-rate',
      rate,
      timeUnit: '1s',
      duration: __ENV.DURATION || '30s',
      preAllocatedVUs: Math.max(10, rate),
      maxVUs: Math.max(50, rate * 4),
    },
  },
  thresholds,
};

export function setup() {
  return prepare(20);
}

export default journey;
