// Spike: a calm rate, a sudden burst (SPIKE_RATE/s, default 400) for 20s,
// then calm again; the suite must absorb it and recover.
import { thresholds, prepare, journey, num } from './lib/suite.js';

export const options = {
  scenarios: {
    spike: {
      executor: 'ramping-arrival-rate',
      startRate: 20,
      timeUnit: '1s',
      preAllocatedVUs: 50,
      maxVUs: 1000,
      stages: [
        { target: 20, duration: '20s' },
        { target: num('SPIKE_RATE', 400), duration: '5s' },
        { target: num('SPIKE_RATE', 400), duration: '20s' },
        { target: 20, duration: '5s' },
        { target: 20, duration: '20s' },
      ],
    },
  },
  thresholds: { ...thresholds, http_req_failed: ['rate<0.05'] },
};

export function setup() {
  return prepare(20);
}

export default journey;
