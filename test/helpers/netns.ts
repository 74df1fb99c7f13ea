/**
 * NetnsLab for system tests: the lab lives in scenarios/lib/netns-lab.ts, shared with the live scenarios
 * (npm run scenario:*); this module keeps the tests' import path.
 */
export * from '../../scenarios/lib/netns-lab.js';
