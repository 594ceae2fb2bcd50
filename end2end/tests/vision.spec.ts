import { test, expect } from "@playwright/test";
import http from "node:http";
import { AddressInfo } from "node:net";
import { BRIDGE_KEY } from "../playwright.config";
import { E2E_SECRETS, expectChat, send, signIn } from "./helpers";

// The optional vision check, as an admin and a reviewer use it: the admin points Dropcheck at
// a vision model (here a local mock of an OpenAI-compatible endpoint) under Settings →
// Integrations and has step 2 sent back automatically; a sandbox contractor sends two photos;
// the phone is asked to retake step 2; the reviewer sees each answer beside the verdicts and
// dismisses the flag; the admin turns the check off again.

const calls: number[] = [];
const mock = http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    const v = JSON.parse(body);
    const step = Number(/^Step (\d+)/.exec(v.messages[1].content[0].text)![1]);
    calls.push(step);
    const ok = step !== 2;
    const answer = {
      shows_expected_subject: ok,
      legible: true,
      confidence: ok ? 0.93 : 0.81,
      problems: ok ? [] : ["shows a blank wall"],
      values: {},
    };
    const out = { choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: JSON.stringify(answer) } }] };
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(out));
  });
});
let mockUrl = "";
test.beforeAll(async () => {
  await new Promise<void>((r) => mock.listen(0, "127.0.0.1", r));
  mockUrl = `http://127.0.0.1:${(mock.address() as AddressInfo).port}`;
});
test.afterAll(() => mock.close());

test("vision check: set up by an admin, a retake asked of the phone, the answers beside the verdicts, turned off", async ({ page, request }) => {
  await signIn(page);
  await page.goto("/settings/integrations");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await expect(page.locator("#vision-state")).toHaveAttribute("data-on", "false");
  await page.fill("#setting-dropcheck_vision_url", mockUrl);
  await page.click("#save-vision");
  await expect(page.locator('.error-box[data-code="missing_setting"]')).toContainText("DROPCHECK_VISION_MODEL is required");
  await page.fill("#setting-dropcheck_vision_model", "e2e-vision");
  await page.fill("#setting-dropcheck_vision_api_key", E2E_SECRETS.visionKey);
  await page.click("#save-vision");
  await expect(page.locator("#vision-saved")).toBeVisible();
  await expect(page.locator("#vision-state")).toHaveAttribute("data-on", "true");
  await expect(page.locator("#vision-state")).toContainText("e2e-vision");
  expect(await page.content()).not.toContain(E2E_SECRETS.visionKey);

  // The contractor opens a drop; its project gets step 2 sent back automatically.
  const drop = "DR77700031";
  const phone = await page.context().newPage();
  await phone.goto(`/sandbox?phone=${encodeURIComponent("+27825550031")}`);
  await send(phone, drop);
  await expectChat(phone, `Drop ${drop}`);
  const res = await request.get(`/api/v1/drops/${drop}`, { headers: { "X-API-Key": BRIDGE_KEY } });
  const project = (await res.json()).project as string;
  await page.goto("/settings/projects");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  const section = page.locator(`section.project[data-project="${project}"]`);
  await section.locator("details.vision-steps summary").click();
  const row = section.locator('.step-vision[data-step="2"]');
  await row.locator('input[name="auto_retake"]').check();
  await Promise.all([
    page.waitForResponse((r) => r.url().includes("/rpc/save_step_vision") && r.ok()),
    row.getByRole("button", { name: "Save" }).click(),
  ]);

  // Two photos: the acknowledgment comes first, then step 2 is asked again.
  await send(phone, "", 2);
  await expectChat(phone, new RegExp(`Got 2 photos for ${drop}`));
  await expectChat(phone, new RegExp(`${drop} step 2 .*does not seem to show what the step asks for \\(shows a blank wall\\)`));

  await page.goto(`/drops/${drop}`);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await expect(page.locator('#step-1 .vision-suggestion[data-result="pass"]')).toContainText("shows the step (confidence 0.93, e2e-vision");
  await expect(page.locator("#step-2 .vision-suggestion")).toContainText("suggests a retake: does not show what the step asks for; problems: shows a blank wall");
  const flag = page.locator('#step-2 .check[data-kind="vision"]');
  await expect(flag).toHaveAttribute("data-open", "true");
  await flag.locator("button.dismiss").click();
  await expect(flag).toHaveAttribute("data-open", "false");
  expect(calls.filter((s) => s === 1 || s === 2).sort()).toEqual([1, 2]);

  // Off again: blank endpoint and model.
  await page.goto("/settings/integrations");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await page.fill("#setting-dropcheck_vision_url", "");
  await page.fill("#setting-dropcheck_vision_model", "");
  await page.click("#save-vision");
  await expect(page.locator("#vision-state")).toHaveAttribute("data-on", "false");
});
