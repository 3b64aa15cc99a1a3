// Smoke: one user walks every journey a few times. Seconds long; CI runs it
// against the suite so the scripts cannot rot.
import { sleep } from 'k6';
import { correct, seedProducts, signUp, browse, order, track } from './lib/suite.js';

export const options = {
  vus: 1,
  iterations: 5,
  thresholds: correct,
};

export function setup() {
  return { ids: seedProducts(2, 1000) };
}

export default function (data) {
  browse(data.ids);
  const token = signUp();
  order(token, data.ids);
  sleep(1.1);
  track();
}
