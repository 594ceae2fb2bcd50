import { test, expect } from "@playwright/test";
import { ADMIN, expectChat, send, signIn } from "./helpers";

// The whole WhatsApp loop in the built-in sandbox: a contractor's number sends a drop number
// and 12 photos through the signed webhook; the reviewer rejects two steps; the sandbox phone
// receives the feedback; the contractor fixes it; the reviewer's open page turns Resubmitted
// without a reload. Runs after review.spec.ts, whose first test created the admin.
test.describe.configure({ mode: "serial" });

const PHONE = "+27825550001";
const DROP = "DR77700001";

test("sandbox: drop + 12 photos, feedback on steps 3 and 7, fixes, Resubmitted live", async ({ page }) => {
  await signIn(page);
  const phone = await page.context().newPage();
  await phone.goto(`/sandbox?phone=${encodeURIComponent(PHONE)}`);
  await expect(phone.locator("h1")).toHaveText("WhatsApp sandbox");

  // A reviewer's drops list, open before the drop exists, shows it without a reload.
  const list = await page.context().newPage();
  await list.goto(`/?q=${DROP}`);
  await expect(list.locator("body")).toHaveAttribute("data-hydrated", "true");
  await expect(list.locator("tr.drop-row")).toHaveCount(0);
  await list.evaluate(() => ((window as any).__noReload = true));

  await send(phone, DROP);
  await expectChat(phone, `Drop ${DROP}`);
  await expect(list.locator(`tr.drop-row[data-drop="${DROP}"]`)).toHaveCount(1, { timeout: 15_000 });
  expect(await list.evaluate(() => (window as any).__noReload)).toBe(true);
  await list.close();
  await send(phone, "", 12);
  await expectChat(phone, /Got 12 photos/);
  // Every step has a photo: the drop went to review by itself (no DONE needed).
  await expectChat(phone, `${DROP} is now with QA`);
  await send(phone, `${DROP} DONE`);
  await expectChat(phone, `${DROP} is submitted for review`);

  // The reviewer sees the drop Unreviewed with 12 thumbnails and rejects steps 3 and 7.
  await page.goto(`/drops/${DROP}`);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await expect(page.locator("#drop-number .status-badge")).toHaveText("Unreviewed");
  await expect(page.locator(".step-card img")).toHaveCount(12);
  for (const step of [3, 7]) {
    await page.click(`#reject-${step} summary`);
    await page.check(`#v-${step}-missing`);
    await page.selectOption(`#reason-${step}`, "no_photo");
    await page.click(`#save-${step}`);
    await expect(page.locator(`#step-${step}`)).toHaveAttribute("data-verdict", "missing");
  }
  await page.click("#incomplete-panel summary");
  await page.click("#confirm-incomplete");
  await expect(page.locator("#drop-number .status-badge")).toHaveText("Incomplete");
  await page.evaluate(() => ((window as any).__noReload = true));

  // The sandbox phone receives the feedback naming both steps.
  await expectChat(phone, /Step 3[\s\S]*Step 7/);

  // Two new photos (they go to the open steps 3 and 7) and DONE.
  await send(phone, "", 2);
  await expectChat(phone, /Got 2 photos/);
  await send(phone, `${DROP} DONE`);
  await expectChat(phone, `fixes for ${DROP}`);

  // The reviewer's open page turns Resubmitted by itself (server-sent events), no reload.
  await expect(page.locator("#drop-number .status-badge")).toHaveText("Resubmitted", { timeout: 15_000 });
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
  await expect(page.locator("#step-3 img")).toHaveCount(2);

  // The conversation is in the message history too.
  await page.goto(`/messages?phone=${encodeURIComponent("825550001")}`);
  await expect(page.locator("tr.message-row").first()).toBeVisible();
  await expect(page.locator("#messages")).toContainText(`fixes for ${DROP}`);
});

// Issue 13: a photo too dark is filed, the phone is asked at once to take it again, the
// drops list's "Flagged photos only" finds the drop, and the reviewer sees the flag with its
// measure on the photo and dismisses it.
test("sandbox: a dark photo is flagged, asked again, filtered, shown and dismissed", async ({ page }) => {
  const phoneNumber = "+27825550019";
  const drop = "DR77700019";
  await signIn(page);
  const phone = await page.context().newPage();
  await phone.goto(`/sandbox?phone=${encodeURIComponent(phoneNumber)}`);
  await send(phone, drop);
  await expectChat(phone, `Drop ${drop}`);
  await send(phone, "", 2, "dark");
  await expectChat(phone, /Step 2: the photo is too dark — switch on the light/);

  await page.goto("/");
  await page.check("#flagged-only");
  await page.locator("form[action='/'] button[type=submit]").click();
  await expect(page).toHaveURL(/flagged=true/);
  const row = page.locator(`tr.drop-row[data-drop="${drop}"]`);
  await expect(row.locator(".flag-badge")).toHaveText("⚑ 1 flagged");
  await expect(page.locator("tr.drop-row")).toHaveCount(1);

  await row.locator("a.drop-link").click();
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  const flag = page.locator('#step-2 .check[data-kind="dark"]');
  await expect(flag).toHaveAttribute("data-open", "true");
  await expect(flag).toContainText("Too dark");
  await expect(flag).toContainText(/mean brightness \d+ of 255/);
  await expect(page.locator('#step-1 .check[data-result="pass"]')).toHaveText("✓ Usable");
  await flag.locator("button.dismiss").click();
  await expect(flag).toHaveAttribute("data-open", "false");
  await expect(flag).toContainText(`closed: ${ADMIN.email}`);

  await page.goto("/?flagged=true");
  await expect(page.locator(`tr.drop-row[data-drop="${drop}"]`)).toHaveCount(0);

  // The same contractor sends step 1's photo again, as a file, for another drop: the reviewer
  // sees it flagged as reused, beside its original; the phone is not asked about it.
  await page.goto(`/drops/${drop}`);
  const src = await page.locator("#step-1 img").first().getAttribute("src");
  const original = await page.request.get(src!.replace(/\/thumb$/, ""));
  expect(original.ok()).toBe(true);
  const other = "DR77700020";
  await send(phone, other);
  await expectChat(phone, `Drop ${other}`);
  await phone.setInputFiles("#sandbox-files", { name: "again.jpg", mimeType: "image/jpeg", buffer: await original.body() });
  await send(phone, "");
  await expectChat(phone, new RegExp(`Got 1 photo for ${other}`));
  await page.goto(`/drops/${other}`);
  const reused = page.locator('#step-1 .check[data-kind="reused"]');
  await expect(reused).toHaveAttribute("data-open", "true");
  await expect(reused).toContainText(`reused from ${drop} step 1`);
  await expect(reused.locator("a.original")).toHaveAttribute("href", `/drops/${drop}#step-1`);
  await expect(reused.locator("a.original img")).toBeVisible();
  await page.goto("/?flagged=true");
  await expect(page.locator(`tr.drop-row[data-drop="${other}"] .flag-badge`)).toHaveText("⚑ 1 flagged");
});
