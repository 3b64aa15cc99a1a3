// Stress: the arrival rate ramps up until the suite breaks; the run stops
// when errors pass 5% (abortOnFail) and the summary shows where it gave out.
// From 10/s to MAX_RATE/s (default 600) over DURATION (default 2m).
import { prepare, journey, num } from './lib/suite.js';

export const options = {
  scenarios: {
    ramp: {
      executor: 'ramping-arrival-rate',
      startRate: 10,
      timeUnit: '1s',
      preAllocatedVUs: 50,
      maxVUs: 1000,
      stages: [{ target: num('MAX_RATE', 600), duration: __ENV.DURATION || '2m' }],
    },
  },
  thresholds: {
    http_req_failed: [{ threshold: 'rate<0.05', abortOnFail: true, delayAbortEval: '10s' }],
    // A 201 for an order that was then cancelled is no error to k6, but a
    // failed check ("order is paid").
    checks: ['rate>0.99'],
  },
};

export function setup() {
  return prepare(20);
}

export default journey;
