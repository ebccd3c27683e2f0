import { defineConfig } from 'vitest/config';

// Unit tests run in parallel; the real-kernel end-to-end suites (network namespaces, floods, the
// firewall) run one file at a time so that their timings do not fight over two cores.
export default defineConfig({
  // Vite compiles .ts, .mts and .tsx as TypeScript; main.cts and version.cts (CommonJS, so that
  // `floodgate --version` starts no ES module loader) need saying.
  oxc: { include: /\.(m?ts|cts|[jt]sx)$/ },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/e2e/**'],
          testTimeout: 20_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
