import { test, expect, APIRequestContext } from "@playwright/test";
import { BRIDGE_KEY } from "../playwright.config";
import { signIn, expectChat } from "./helpers";

// Broadcasts as an admin runs them (issue 14, item 6): a draft made on /broadcasts shows who
// would get it and who not and why; Start sends at its pace (one a minute here) and the
// sandbox phone receives the first message; Pause, Resume and Cancel follow — with JavaScript
// on, then the same forms with it off and a refused form keeping what was typed, and Start
// pressed from the keyboard alone.

const TAG = "e2e-bcast";
const PEOPLE = [
  { phone: "+27715550101", name: "Anele Broadcast", consent: "opted_in" },
  { phone: "+27715550102", name: "Bongani Broadcast", consent: "opted_in" },
  { phone: "+27715550103", name: "Carla Broadcast", consent: "unknown" },
];
const VARIABLES = "amount = R 0\nreference = DEC\ncustomer_name = {{ name }}";

async function contacts(request: APIRequestContext) {
  for (const p of PEOPLE) {
    const res = await request.post("/api/v1/contacts", {
      headers: { "X-API-Key": BRIDGE_KEY },
      data: { phone: p.phone, name: p.name, consent: p.consent, tags: [TAG] },
    });
    expect([201, 409]).toContain(res.status());
  }
}

test.describe.serial("broadcasts", () => {
  test("an admin drafts a broadcast, sees the preflight, starts, pauses, resumes and cancels it", async ({ page, request }) => {
    await contacts(request);
    await signIn(page);
    await page.click("nav >> a[href='/broadcasts']");
    await expect(page).toHaveURL(/\/broadcasts$/);
    await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
    const form = page.locator("#new-broadcast");
    await form.locator("input[name=name]").fill("E2E December");
    await form.locator("select[name=template]").selectOption("payment_confirmation");
    await form.locator("select[name=tag]").selectOption(TAG);
    await form.locator("input[name=pace_per_minute]").fill("1");
    await form.locator("textarea[name=variables]").fill(VARIABLES);
    await page.click("#create-broadcast");
    await expect(page).toHaveURL(/\/broadcasts\/\d+$/);
    await expect(page.locator("#broadcast-status")).toHaveText("Draft — not started");
    await expect(page.locator("#eligible")).toHaveText("2 contacts would get it.");
    await expect(page.locator("#excluded")).toContainText("1 contact: not opted in for marketing");

    await page.click("#broadcast-start");
    await expect(page.locator("#saved")).toBeVisible();
    await expect(page.locator("#broadcast-status")).toHaveText("Sending");
    // The sweep (every 2 s here) queues the first message; the next waits for the next minute.
    await expect(async () => {
      await page.reload();
      await expect(page.locator('#progress tr[data-status="queued"]')).toContainText("1", { timeout: 1000 });
    }).toPass({ timeout: 20_000 });
    await expect(page.locator('#progress tr[data-status="pending"]')).toContainText("1");
    const phone = await page.context().newPage();
    await phone.goto(`/sandbox?phone=${encodeURIComponent(PEOPLE[0].phone)}`);
    await expectChat(phone, /DEC/);
    await phone.close();

    await page.click("#broadcast-pause");
    await expect(page.locator("#broadcast-status")).toHaveText("Paused");
    await expect(page.locator("#broadcast-detail")).toContainText("paused by a user");
    await page.click("#broadcast-start");
    await expect(page.locator("#broadcast-status")).toHaveText("Sending");
    await page.click("#broadcast-cancel");
    await expect(page.locator("#broadcast-status")).toHaveText("Cancelled");
    await expect(page.locator("#broadcast-start")).toHaveCount(0);

    await page.click("a[href='/broadcasts']");
    const row = page.locator("#broadcasts .broadcast-row").filter({ hasText: "E2E December" });
    await expect(row).toContainText("Cancelled");
    // (A second message may have been queued if a minute passed between Start and Cancel.)
    await expect(row).toContainText(/[12] of 2 queued · 1 excluded/);
  });

  test.describe("without JavaScript", () => {
    test.use({ javaScriptEnabled: false });

    test("a refused form keeps what was typed; a draft is made and cancelled with plain forms", async ({ page }) => {
      await signIn(page);
      await page.goto("/broadcasts");
      const form = page.locator("#new-broadcast");
      await form.locator("input[name=name]").fill("No-JS offer");
      await form.locator("select[name=tag]").selectOption(TAG);
      await form.locator("input[name=quiet_start]").fill("21:00");
      await page.click("#create-broadcast");
      await expect(page.locator("#form-error")).toContainText("quiet hours need both a start and an end");
      await expect(form.locator("input[name=name]")).toHaveValue("No-JS offer");
      await expect(form.locator("input[name=quiet_start]")).toHaveValue("21:00");
      await form.locator("input[name=quiet_end]").fill("08:00");
      await form.locator("select[name=template]").selectOption("payment_confirmation");
      await form.locator("textarea[name=variables]").fill(VARIABLES);
      await page.click("#create-broadcast");
      await expect(page).toHaveURL(/\/broadcasts\/\d+$/);
      await expect(page.locator("#broadcast-status")).toHaveText("Draft — not started");
      await expect(page.locator("main")).toContainText("quiet 21:00–08:00");
      await page.click("#broadcast-cancel");
      await expect(page.locator("#broadcast-status")).toHaveText("Cancelled");
    });
  });

  test("Start is reached and pressed with the keyboard alone", async ({ page }) => {
    await signIn(page);
    await page.goto("/broadcasts");
    await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
    const form = page.locator("#new-broadcast");
    await form.locator("input[name=name]").fill("Keyboard offer");
    await form.locator("select[name=template]").selectOption("payment_confirmation");
    await form.locator("select[name=tag]").selectOption(TAG);
    await form.locator("input[name=frequency_hours]").fill("0");
    // One a minute: the sweep (every 2 s here) must not finish it before Cancel is pressed.
    await form.locator("input[name=pace_per_minute]").fill("1");
    await form.locator("textarea[name=variables]").fill(VARIABLES);
    await form.locator("textarea[name=variables]").press("Tab");
    await expect(page.locator("#create-broadcast")).toBeFocused();
    await page.keyboard.press("Enter");
    await expect(page).toHaveURL(/\/broadcasts\/\d+$/);
    let reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
      await page.keyboard.press("Tab");
      reached = await page.evaluate(() => document.activeElement?.id === "broadcast-start");
    }
    expect(reached).toBe(true);
    await page.keyboard.press("Enter");
    await expect(page.locator("#broadcast-status")).toHaveText("Sending");
    await page.locator("#broadcast-cancel").press("Enter");
    await expect(page.locator("#broadcast-status")).toHaveText("Cancelled");
  });
});
