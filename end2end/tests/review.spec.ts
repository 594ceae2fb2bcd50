import { test, expect, Page, APIRequestContext } from "@playwright/test";
import { BRIDGE_KEY } from "../playwright.config";
import { ADMIN, signIn } from "./helpers";

// One story, in order: first-admin setup, the demo data, the review loop with JavaScript,
// the same mark-incomplete flow without JavaScript, and a reviewer kept out of settings.
test.describe.configure({ mode: "serial" });

const REVIEWER = { email: "reviewer@example.com", password: "reviewer password" };

async function hydrated(page: Page) {
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

test("first run: /setup creates the admin and signs them in", async ({ page }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto("/");
  await expect(page).toHaveURL(/\/setup$/);
  // The first admin can name the project a fresh install starts with (prefilled).
  await expect(page.locator("#project")).toHaveValue("Default project");
  await page.fill("#email", ADMIN.email);
  await page.fill("#password", ADMIN.password);
  await page.fill("#confirm", ADMIN.password);
  await page.click("#create-admin");
  await expect(page.locator("#signed-in-as")).toHaveText(ADMIN.email);
  await expect(page.locator("h1")).toHaveText("Drops");
  // Tailwind's CSS is served and applied.
  await expect(page.locator("h1")).toHaveCSS("font-weight", "600");
  await page.goto("/setup");
  await expect(page).toHaveURL(/\/$/);
  expect(errors).toEqual([]);
});

test("the demo data fills the dashboard and the status badges filter it", async ({ page }) => {
  await signIn(page, ADMIN);
  await hydrated(page);
  await expect(page.locator("a.count-badge").first()).toContainText("64");
  await expect(page.locator("tr.drop-row")).toHaveCount(50);
  await expect(page.locator("#next-page")).toBeVisible();
  await page.click('a[data-filter="unreviewed"]');
  await expect(page).toHaveURL(/status=unreviewed/);
  await expect(page.locator("tr.drop-row")).toHaveCount(20);
  const statuses = await page.locator("tr.drop-row .status-badge").evaluateAll((els) => els.map((e) => e.getAttribute("data-status")));
  expect(new Set(statuses)).toEqual(new Set(["unreviewed"]));
  await page.click('a[data-filter="incomplete"]');
  await expect(page.locator("tr.drop-row")).toHaveCount(12);
});

test("review loop: missing + retake, mark incomplete, API resubmit, approve all", async ({ page, request }) => {
  await signIn(page, ADMIN);
  await page.goto("/?status=unreviewed");
  const number = (await page.locator("tr.drop-row").first().getAttribute("data-drop"))!;
  await page.click(`tr.drop-row[data-drop="${number}"] a`);
  await expect(page.locator("#drop-number")).toContainText(number);
  await hydrated(page);
  await expect(page.locator(".step-card")).toHaveCount(12);
  await expect(page.locator("#step-3 img")).toHaveCount(1);
  await expect(page.locator("#drop-number .status-badge")).toHaveText("Unreviewed");
  // A marker on window survives only if nothing reloads the page.
  await page.evaluate(() => ((window as any).__noReload = true));

  await page.click("#reject-3 summary");
  await page.check("#v-3-missing");
  await page.selectOption("#reason-3", "no_photo");
  await page.click("#save-3");
  await expect(page.locator("#step-3")).toHaveAttribute("data-verdict", "missing");

  await page.click("#reject-7 summary");
  await page.check("#v-7-retake");
  await page.fill("#note-7", "Meter reading is blurred");
  await page.click("#save-7");
  await expect(page.locator("#step-7")).toHaveAttribute("data-verdict", "retake");

  await page.click("#incomplete-panel summary");
  const preview = page.locator("#feedback-preview");
  await expect(preview).toContainText("Step 3 – Cable entry outside: photo missing");
  await expect(preview).toContainText("Step 7 – Power meter reading: photo unusable, please retake");
  await expect(preview).toContainText("Meter reading is blurred");
  await expect(preview).toContainText(`Once uploaded, send: ${number} DONE`);
  await page.click("#confirm-incomplete");
  const badge = page.locator("#drop-number .status-badge");
  await expect(badge).toHaveText("Incomplete");
  await expect(badge).toHaveAttribute("data-status", "incomplete");
  await expect(badge).toHaveClass(/bg-red-100/);
  await expect(page.locator("#timeline")).toContainText("Once uploaded, send");
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);

  const res = await request.post("/api/resubmit", { headers: { "X-API-Key": BRIDGE_KEY }, data: { drop_number: number } });
  expect(res.status()).toBe(200);
  expect((await res.json()).success).toBe(true);
  await page.reload();
  await expect(page.locator("#drop-number .status-badge")).toHaveText("Resubmitted");
  await expect(page.locator("#drop-number .status-badge")).toHaveClass(/bg-yellow-100/);
  // Reopened steps come first on a resubmitted drop.
  await expect(page.locator(".step-card").first()).toHaveAttribute("data-step", "3");
  await expect(page.locator("#step-3")).toContainText("Reopened — was Missing");

  await hydrated(page);
  // The page opens on the first reopened step.
  await expect(page.locator("#step-3")).toBeFocused();
  await page.click("#approve-all");
  await expect(page.locator("#drop-number .status-badge")).toHaveText("Approved");
  await expect(page.locator("#drop-number .status-badge")).toHaveClass(/bg-green-100/);
  await expect(page.locator('.step-card[data-verdict="ok"]')).toHaveCount(12);
});

// The keyboard tests press keys only (no clicks once the page is open) and check the outcome
// over the API, so a shortcut that types into a field or a key that does nothing fails them.
async function api(request: APIRequestContext, path: string) {
  const res = await request.get(path, { headers: { "X-API-Key": BRIDGE_KEY } });
  expect(res.status()).toBe(200);
  return res.json();
}

// Signs in and opens the oldest unreviewed drop on the list's first page, which opens with
// focus on its first step (every step needs a verdict).
async function openUnreviewedDrop(page: Page): Promise<string> {
  await signIn(page, ADMIN);
  await page.goto("/?status=unreviewed");
  const number = (await page.locator("tr.drop-row").last().getAttribute("data-drop"))!;
  await page.goto(`/drops/${number}`);
  await hydrated(page);
  await expect(page.locator("#step-1")).toBeFocused();
  return number;
}

test("Review next opens a drop with JavaScript on; the list's keys: / search, j/k rows, Enter opens, n next", async ({ page }) => {
  await signIn(page, ADMIN);
  await hydrated(page);
  await page.click("#review-next");
  await expect(page).toHaveURL(/\/drops\/DR\d{8}$/);
  await expect(page.locator("#drop-number")).toBeVisible();
  await expect(page.locator("h1")).not.toHaveText("Page not found");

  await page.goto("/?status=unreviewed");
  await hydrated(page);
  await page.keyboard.press("/");
  await expect(page.locator("#search")).toBeFocused();
  await page.keyboard.type("jkn");
  await expect(page.locator("#search")).toHaveValue("jkn");
  await expect(page).toHaveURL(/status=unreviewed$/);
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Backspace");
  await page.keyboard.press("Escape");
  await expect(page.locator("#search")).not.toBeFocused();
  const rows = page.locator("tr.drop-row a.drop-link");
  await page.keyboard.press("j");
  await expect(rows.nth(0)).toBeFocused();
  await page.keyboard.press("j");
  await expect(rows.nth(1)).toBeFocused();
  await page.keyboard.press("k");
  await expect(rows.nth(0)).toBeFocused();
  const first = (await page.locator("tr.drop-row").first().getAttribute("data-drop"))!;
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(new RegExp(`/drops/${first}$`));
  await page.goto("/");
  await hydrated(page);
  await page.keyboard.press("n");
  await expect(page).toHaveURL(/\/drops\/DR\d{8}$/);
});

test("keyboard only: n then a approves the next drop (2 keys)", async ({ page, request }) => {
  await signIn(page, ADMIN);
  await page.goto("/next");
  await expect(page).toHaveURL(/\/drops\/DR\d{8}$/);
  const previous = page.url();
  await hydrated(page);
  await page.keyboard.press("n");
  await expect(page).not.toHaveURL(previous);
  await expect(page).toHaveURL(/\/drops\/DR\d{8}$/);
  const number = page.url().split("/").pop()!;
  await expect(page.locator("#drop-number .status-badge")).toHaveText(/Unreviewed|Resubmitted/);
  await hydrated(page);
  await page.keyboard.press("a");
  await expect(page.locator("#drop-number .status-badge")).toHaveText("Approved");
  const d = await api(request, `/api/v1/drops/${number}`);
  expect(d.status).toBe("approved");
  expect(d.steps.map((s: any) => s.verdict)).toEqual(Array(d.steps.length).fill("ok"));
});

test("keyboard only: two steps sent back with a note each in 7 keys; the feedback is queued", async ({ page, request }) => {
  const number = await openUnreviewedDrop(page);
  const reasons = await page.locator("#reason-2 option").evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));

  await page.keyboard.press("m");                       // 1: step 1 missing, its note focused
  await expect(page.locator("#note-1")).toBeFocused();
  await page.keyboard.type("Cable entry not visible");
  await page.keyboard.press("Enter");                   // 2: saved, on to step 2
  await expect(page.locator("#step-1")).toHaveAttribute("data-verdict", "missing");
  await expect(page.locator("#step-2")).toBeFocused();
  await page.keyboard.press("r");                       // 3: step 2 retake
  await expect(page.locator("#note-2")).toBeFocused();
  await page.keyboard.press("2");                       // 4: the second coded reason
  await expect(page.locator("#reason-2")).toHaveValue(reasons[2]);
  await page.keyboard.type("Meter 2 is blurred");
  await page.keyboard.press("Enter");                   // 5: saved, on to step 3
  await expect(page.locator("#step-2")).toHaveAttribute("data-verdict", "retake");
  await expect(page.locator("#step-3")).toBeFocused();
  await page.keyboard.press("i");                       // 6: the preview, its confirm focused
  await expect(page.locator("#confirm-incomplete")).toBeFocused();
  await expect(page.locator("#feedback-preview")).toContainText("Meter 2 is blurred");
  await page.keyboard.press("Enter");                   // 7: queued
  await expect(page.locator("#drop-number .status-badge")).toHaveText("Incomplete");

  const d = await api(request, `/api/v1/drops/${number}`);
  expect(d.status).toBe("incomplete");
  expect([d.steps[0].verdict, d.steps[0].note]).toEqual(["missing", "Cable entry not visible"]);
  expect([d.steps[1].verdict, d.steps[1].reason, d.steps[1].note]).toEqual(["retake", reasons[2], "Meter 2 is blurred"]);
  expect(d.steps.slice(2).every((s: any) => s.verdict === "pending")).toBe(true);
  const m = await api(request, `/api/v1/messages?drop=${number}&direction=out`);
  const feedback = m.messages.find((x: any) => x.template === "drop_feedback");
  expect(feedback.body).toContain("Cable entry not visible");
  expect(feedback.body).toContain("Meter 2 is blurred");
});

test("keyboard only: Escape leaves a step's form, o accepts and moves on, Space opens a photo full size", async ({ page, request }) => {
  const number = await openUnreviewedDrop(page);
  await page.keyboard.press("w");
  await expect(page.locator("#note-1")).toBeFocused();
  await page.keyboard.type("x");
  await page.keyboard.press("Escape");
  await expect(page.locator("#reject-1")).not.toHaveAttribute("open", "");
  await expect(page.locator("#step-1")).toBeFocused();
  await page.keyboard.press("o");
  await expect(page.locator("#step-1")).toHaveAttribute("data-verdict", "ok");
  await expect(page.locator("#step-2")).toBeFocused();
  // Tab reaches step 2's photo; Space opens it over the page, Escape closes it.
  await page.keyboard.press("Tab");
  await expect(page.locator("#step-2 a.thumb").first()).toBeFocused();
  await page.keyboard.press(" ");
  await expect(page.locator("#lightbox")).toHaveAttribute("open", "");
  await expect(page.locator("#lightbox-img")).toHaveAttribute("src", /\/media\/\d+$/);
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("Escape");
  await expect(page.locator("#lightbox")).not.toHaveAttribute("open", "");
  await expect(page.locator("#step-2 a.thumb").first()).toBeFocused();
  const d = await api(request, `/api/v1/drops/${number}`);
  expect([d.steps[0].verdict, d.steps[0].note]).toEqual(["ok", ""]);
  expect(d.status).toBe("unreviewed");
});

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });

  test("mark steps and mark incomplete with plain form posts", async ({ page }) => {
    await signIn(page, ADMIN); // a plain form post without JavaScript
    await page.goto("/?status=unreviewed");
    const number = (await page.locator("tr.drop-row").first().getAttribute("data-drop"))!;
    await page.goto(`/drops/${number}`);
    await expect(page.locator("body")).not.toHaveAttribute("data-hydrated", "true");

    await page.click("#reject-3 summary");
    await page.check("#v-3-missing");
    await page.click("#save-3");
    await expect(page.locator("#step-3")).toHaveAttribute("data-verdict", "missing");
    await page.click("#reject-7 summary").catch(() => {});
    await page.check("#v-7-retake");
    await page.fill("#note-7", "Retake with the flash on");
    await page.click("#save-7");
    await expect(page.locator("#step-7")).toHaveAttribute("data-verdict", "retake");

    await page.click("#incomplete-panel summary");
    await expect(page.locator("#feedback-preview")).toContainText("Retake with the flash on");
    await page.click("#confirm-incomplete");
    await expect(page.locator("#drop-number .status-badge")).toHaveText("Incomplete");
  });

  test("Review next is a plain link to the next drop", async ({ page }) => {
    await signIn(page, ADMIN); // a plain form post without JavaScript
    await page.click("#review-next");
    await expect(page).toHaveURL(/\/drops\/DR\d{8}$/);
    await expect(page.locator("#drop-number")).toBeVisible();
  });

  test("a failed sign-in shows the reason", async ({ page }) => {
    await page.goto("/login");
    await page.fill("#email", ADMIN.email);
    await page.fill("#password", "not the password");
    await page.click("#sign-in");
    await expect(page.locator(".error-box")).toContainText("Wrong e-mail or password");
    await expect(page.locator(".error-box")).toHaveAttribute("data-code", "wrong_credentials");
  });
});

test("a reviewer is refused the admin settings", async ({ page }) => {
  await signIn(page, ADMIN);
  await page.goto("/settings/users");
  await hydrated(page);
  await page.fill("#new-email", REVIEWER.email);
  await page.selectOption("#new-role", "reviewer");
  await page.fill("#new-password", REVIEWER.password);
  await page.click("#add-user");
  await expect(page.locator(`tr[data-user="${REVIEWER.email}"]`)).toContainText("reviewer");
  await page.click("text=Sign out");
  await expect(page).toHaveURL(/\/login$/);

  await signIn(page, REVIEWER);
  await expect(page.locator('a[href="/settings/users"]')).toHaveCount(0);
  const res = await page.goto("/settings/users");
  expect(res!.status()).toBe(403);
  await expect(page.locator("h1")).toHaveText("Admins only");
  const res2 = await page.goto("/settings/projects");
  expect(res2!.status()).toBe(403);
});
