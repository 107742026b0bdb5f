/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    // Type errors are caught by `tsc` in the test script; ts-jest only transpiles, which is much faster.
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }],
  },
  setupFilesAfterEnv: ['<rootDir>/test/support/setup.ts'],
  testTimeout: 180000,
  maxWorkers: 2,
  testSequencer: '<rootDir>/test/support/sequencer.js',
};
