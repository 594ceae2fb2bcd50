import { defineConfig, devices } from "@playwright/test";

// The server under test: DROPCHECK_BIN (scripts/test.sh passes the binary `cargo test` built;
// by default the release binary scripts/run.sh builds), a fresh data directory per run, the demo data
// loaded first, the sandbox provider (chosen in no environment variable, so the settings
// test can switch it), and a bootstrap API key for the API calls.
const port = process.env.E2E_PORT ?? "3100";
const bin = process.env.DROPCHECK_BIN ?? "../target/release/dropcheck";
const siteRoot = process.env.LEPTOS_SITE_ROOT ?? "../target/site";
export const BRIDGE_KEY = "e2e-bridge-key-0123456789";
// Everything the server logs during the run (tests/zz-logs.spec.ts greps it for secrets).
export const SERVER_LOG = process.env.E2E_SERVER_LOG ?? `${process.env.TMPDIR ?? "/tmp"}/dropcheck-e2e-server-${port}.log`;

export default defineConfig({
  testDir: "./tests",
  workers: 1,
  fullyParallel: false,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [["list"]],
  use: { baseURL: `http://127.0.0.1:${port}`, trace: "retain-on-failure" },
  // E2E_NO_SERVER=1: test a server you started yourself (fresh data dir with the demo loaded).
  webServer: process.env.E2E_NO_SERVER ? undefined : {
    command: `sh -c 'D=$(mktemp -d) && DROPCHECK_DATA_DIR=$D ${bin} demo && DROPCHECK_DATA_DIR=$D ${bin} serve 2>&1 | tee ${SERVER_LOG}'`,
    url: `http://127.0.0.1:${port}/health`,
    reuseExistingServer: false,
    timeout: 120_000,
    stdout: "pipe",
    stderr: "pipe",
    env: {
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: siteRoot,
      BRIDGE_API_KEY: BRIDGE_KEY,
      RUST_LOG: "info,sqlx=warn",
      // The automations spec waits for a 1-minute held-status rule: look for it every 2 s.
      DROPCHECK_AUTOMATION_SWEEP_SECONDS: "2",
      // While the settings test has Twilio or Meta active, nothing may leave this machine:
      // their APIs are a closed local port (shown on the page as set by the environment).
      TWILIO_API_BASE: "http://127.0.0.1:9",
      META_API_BASE: "http://127.0.0.1:9",
    },
  },
  projects: [
    {
      name: "chromium",
      use: {
        ...devices["Desktop Chrome"],
        launchOptions: {
          executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
          args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"],
        },
      },
    },
  ],
});
