// Takes the README/docs screenshots from a running server with the demo data loaded:
//   BASE_URL=http://127.0.0.1:3100 EMAIL=… PASSWORD=… node scripts/screenshots.mjs ../docs/screenshots
import { chromium } from "@playwright/test";

const base = process.env.BASE_URL ?? "http://127.0.0.1:3100";
const out = process.argv[2] ?? "../docs/screenshots";
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
await page.goto(`${base}/login`);
await page.fill("#email", process.env.EMAIL);
await page.fill("#password", process.env.PASSWORD);
await page.click("#sign-in");
await page.waitForSelector("#signed-in-as");
await page.goto(`${base}/`);
await page.screenshot({ path: `${out}/drops.png` });
await page.goto(`${base}/?status=resubmitted`);
const number = await page.locator("tr.drop-row").first().getAttribute("data-drop");
await page.goto(`${base}/drops/${number}`);
await page.waitForSelector(".step-card");
await page.screenshot({ path: `${out}/drop.png`, fullPage: false });
await page.screenshot({ path: `${out}/drop-full.png`, fullPage: true });
await page.goto(`${base}/settings/projects`);
await page.screenshot({ path: `${out}/projects.png` });
await page.goto(`${base}/settings/users`);
await page.screenshot({ path: `${out}/users.png` });
// The sandbox after a short conversation, the message history and the webhook ledger.
const phone = "%2B27825550099";
await page.goto(`${base}/sandbox?phone=${phone}`);
await page.fill("#sandbox-text", "DR55500001");
await page.click("#sandbox-send");
await page.selectOption("#sandbox-photos", "3");
await page.fill("#sandbox-text", "");
await page.click("#sandbox-send");
await page.setInputFiles("#sandbox-files", { name: "delivery-note.pdf", mimeType: "application/pdf", buffer: Buffer.from("%PDF-1.4 delivery note") });
await page.click("#sandbox-send");
await page.waitForTimeout(6000);
await page.goto(`${base}/sandbox?phone=${phone}`);
await page.screenshot({ path: `${out}/sandbox.png` });
await page.goto(`${base}/drops/DR55500001`);
await page.waitForSelector("#attachments");
await page.screenshot({ path: `${out}/drop-files.png` });
await page.goto(`${base}/messages`);
await page.screenshot({ path: `${out}/messages.png` });
await page.goto(`${base}/events`);
await page.screenshot({ path: `${out}/events.png` });
// Settings, statistics.
await page.goto(`${base}/settings/templates?name=drop_feedback`);
await page.waitForSelector("#template-preview");
await page.screenshot({ path: `${out}/templates.png` });
await page.goto(`${base}/settings/integrations`);
await page.fill("#link-phone", "+27825550098");
await page.click("#start-link");
await page.waitForSelector("#link-code");
await page.screenshot({ path: `${out}/integrations.png`, fullPage: true });
await page.goto(`${base}/settings/api-keys`);
await page.fill("#key-name", "planning system");
await page.check("#scope-read");
await page.click("#create-key");
await page.waitForSelector("#new-api-key");
await page.screenshot({ path: `${out}/api-keys.png` });
await page.goto(`${base}/stats`);
await page.screenshot({ path: `${out}/stats.png` });

// The drop page's weight as a browser loads it the first time (every response, encoded
// bytes): docs/PERFORMANCE.md.
// A tall window, so every thumbnail (loading="lazy") is in view and counted.
const fresh = await browser.newContext({ viewport: { width: 1400, height: 6000 } });
const cookies = await page.context().cookies();
await fresh.addCookies(cookies);
const weighed = await fresh.newPage();
const sizes = [];
weighed.on("requestfinished", async (req) => {
  const s = await req.sizes();
  sizes.push([new URL(req.url()).pathname, s.responseBodySize]);
});
await weighed.goto(`${base}/drops/${number}`);
await weighed.waitForSelector("body[data-hydrated=true]");
await weighed.waitForLoadState("networkidle");
let total = 0;
for (const [path, n] of sizes) {
  total += n;
  if (!path.startsWith("/media/")) console.log(`${path}: ${n}`);
}
console.log(`thumbnails: ${sizes.filter(([p]) => p.startsWith("/media/")).reduce((a, [, n]) => a + n, 0)} bytes in ${sizes.filter(([p]) => p.startsWith("/media/")).length}`);
console.log(`drop page ${number}, first load: ${total} bytes in ${sizes.length} responses`);
await page.goto(`${base}/login`);
await browser.close();
