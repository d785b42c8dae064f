import { defineConfig } from "vitest/config";

/**
 * The fast tier (`npm run test:unit`): the tests named *.unit.test.ts, which need no database,
 * no server and no network, so there is no global setup and nothing to build. `npm test`
 * (vitest.config.ts) runs them too, with everything else.
 */
export default defineConfig({
  test: {
    include: ["test/**/*.unit.test.ts"],
    testTimeout: 10_000,
  },
});
