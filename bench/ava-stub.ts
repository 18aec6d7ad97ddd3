// Stands in for ava when a benchmark imports a test helper (test/helpers/*
// import ava for their test wrappers, and ava refuses to load outside its
// CLI). Declaring a test from a benchmark is an error.
const notHere = (): never => {
  throw new Error('ava is not available in a benchmark');
};
export default Object.assign(notHere, { serial: notHere, skip: notHere, before: notHere, after: notHere });
