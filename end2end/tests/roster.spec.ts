import { test, expect } from "@playwright/test";
import { signIn } from "./helpers";

// Contacts as an admin uses them (issue 14, item 1): a custom attribute added, a CSV file
// imported through mapping, preview and report (with the rejected rows downloaded), the
// list filtered by the imported tag, and a contact's profile changed — with JavaScript on,
// then the same forms with it off, and the filter driven by the keyboard alone.

const CSV = [
  "Mobile;Full name;Plan;Tags",
  "082 555 0142;Naledi Import;Gold;e2e-crew",
  "+27 82 555 0143;Kagiso Import;Silver;e2e-crew",
  "12345;Not a number;;",
  "0825550142;Naledi twice;;",
].join("\n");

test.describe.serial("contacts", () => {
  test("an admin defines an attribute, imports a CSV file and changes a contact", async ({ page }) => {
    await signIn(page);
    await page.click("nav >> a[href='/contacts']");
    await expect(page).toHaveURL(/\/contacts$/);
    await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
    await expect(page.locator("#contacts .contact-row").first()).toBeVisible();

    const add = page.locator("#add-attribute");
    await add.locator("input[name=label]").fill("Plan");
    await add.locator("input[name=key]").fill("plan");
    await add.locator("select[name=type]").selectOption("enum");
    await add.locator("input[name=options]").fill("Gold, Silver");
    await add.getByRole("button", { name: "Add attribute" }).click();
    await expect(page.locator("#saved")).toBeVisible();
    await expect(page.locator('#attributes li[data-attribute="plan"]')).toContainText("enum: Gold, Silver");

    await page.click("#import-contacts");
    await expect(page).toHaveURL(/\/contacts\/import$/);
    await page.setInputFiles("input[name=file]", { name: "crew.csv", mimeType: "text/csv", buffer: Buffer.from(CSV) });
    await page.getByRole("button", { name: "Upload and map columns" }).click();
    await expect(page).toHaveURL(/\/contacts\/import\/\d+$/);
    await expect(page.getByLabel("Column Mobile")).toHaveValue("phone");
    await expect(page.getByLabel("Column Plan")).toHaveValue("attribute:plan");
    await expect(page.getByLabel("Column Tags")).toHaveValue("tags");
    await page.click("#preview-button");
    const preview = page.locator("#preview");
    await expect(preview).toContainText("Preview — nothing is saved yet");
    await expect(preview).toContainText("Would create2");
    await expect(page.locator("#rejected-rows")).toContainText("the same number as line 2");
    await page.click("#import-button");
    const report = page.locator("#report");
    await expect(report).toContainText("Created2");
    await expect(report).toContainText("Rejected2");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#rejected-download")]);
    const rejected = await (await download.createReadStream()).toArray();
    const text = Buffer.concat(rejected).toString("utf8");
    expect(text.split("\r\n")[0]).toBe("Mobile,Full name,Plan,Tags,line,reason");
    expect(text).toContain("the same number as line 2");

    await page.goto("/contacts?tag=e2e-crew");
    await expect(page.locator("#contact-count")).toHaveText("1–2 of 2");
    await page.locator('#contacts tr[data-phone="+27825550142"] a').click();
    await expect(page.locator("#contact-name")).toHaveText("Naledi Import");
    await expect(page.locator('#profile [data-attribute="plan"]')).toContainText("Gold");
    const form = page.locator("#contact-form");
    await form.locator("select[name='attr.plan']").selectOption("Silver");
    await form.locator("input[name=birthday]").fill("31-02");
    await form.getByRole("button", { name: "Save" }).click();
    await expect(page.locator("#form-error")).toContainText("not a birthday");
    await expect(page.locator('#profile [data-attribute="plan"]')).toContainText("Gold");
    await form.locator("select[name='attr.plan']").selectOption("Silver");
    await form.locator("input[name=birthday]").fill("03-14");
    await form.locator("select[name=consent]").selectOption("opted_in");
    await form.getByRole("button", { name: "Save" }).click();
    await expect(page.locator("#saved")).toBeVisible();
    await expect(page.locator('#profile [data-attribute="plan"]')).toContainText("Silver");
    await expect(page.locator("#profile")).toContainText("Opted in (admin@example.com");
    await expect(page.locator("#contact-events")).toContainText("contact.updated");
    await expect(page.locator("#contact-events")).toContainText("changed: consent, birthday, plan");
  });

  test.describe("without JavaScript", () => {
    test.use({ javaScriptEnabled: false });
    test("the filters and the profile form work as plain forms", async ({ page }) => {
      await signIn(page);
      await page.goto("/contacts");
      await page.selectOption("#filter-attribute", "plan");
      await page.fill("#filter-value", "silver");
      await page.click("button:has-text('Filter')");
      await expect(page).toHaveURL(/attribute=plan&value=silver/);
      await expect(page.locator("#contacts .contact-row")).toHaveCount(2);
      await page.locator('#contacts tr[data-phone="+27825550143"] a').click();
      await page.locator("#contact-form input[name=tags]").fill("e2e-crew, night-shift");
      await page.locator("#contact-form").getByRole("button", { name: "Save" }).click();
      await expect(page.locator("#saved")).toBeVisible();
      await expect(page.locator("#profile")).toContainText("e2e-crew, night-shift");
    });
  });

  test("the list is filtered with the keyboard alone", async ({ page }) => {
    await signIn(page);
    await page.goto("/contacts");
    await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
    await page.locator("#filter-q").focus();
    await page.keyboard.type("Kagiso");
    await page.keyboard.press("Enter");
    await expect(page).toHaveURL(/q=Kagiso/);
    await expect(page.locator("#contact-count")).toHaveText("1–1 of 1");
  });
});
