#!/usr/bin/python3
"""End-to-end test of the hub's web dashboard in headless Chromium (Debian's chromium,
chromium-driver and python3-selenium).

Starts a real `hocvu hub run --dashboard` on a seeded hub database (the sample roster), signs in
through the form, drills down nation -> province -> commune by clicking links, and checks that every
figure shown equals `hocvu hub report --format json` (the same NodeStore.nationalReport). Prints
"N passed, N failed" and exits non-zero on any failure.

Usage: Tests/e2e/dashboard_e2e.py [path/to/hocvu] [--screenshots DIR]
"""
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
args = [a for a in sys.argv[1:] if not a.startswith("--")]
HOCVU = os.path.abspath(args[0]) if args else os.path.join(ROOT, ".build", "debug", "hocvu")
SHOTS = sys.argv[sys.argv.index("--screenshots") + 1] if "--screenshots" in sys.argv else None

passed, failed = 0, 0


def wait_url(driver, suffix, seconds=15):
    """A click starts a navigation and returns before it ends: wait for the URL (a loaded CI
    machine may take a while), then read it once."""
    deadline = time.time() + seconds
    while time.time() < deadline and not driver.current_url.endswith(suffix):
        time.sleep(0.05)
    return driver.current_url


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}", file=sys.stderr)


def run(*argv, stdin=None):
    r = subprocess.run([HOCVU, *argv], input=stdin, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        sys.exit(f"hocvu {' '.join(argv)} exited {r.returncode}: {r.stderr}")
    return r.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def value(driver, element_id):
    return driver.find_element(By.ID, element_id).get_attribute("data-value")


def same_rate(shown, expected):
    return abs(float(shown) - expected) < 1e-9


def check_unit(driver, figures, label):
    """The page's headline figures equal the report's figures for that unit."""
    check(int(value(driver, "roster")) == figures["roster"], f"{label}: roster {value(driver, 'roster')} != {figures['roster']}")
    check(int(value(driver, "enrolled")) == figures["rosterEnrolled"], f"{label}: enrolled")
    check(int(value(driver, "certified")) == figures["rosterCertified"], f"{label}: certified")
    check(same_rate(value(driver, "rate"), figures["certifiedShare"]), f"{label}: rate {value(driver, 'rate')} != {figures['certifiedShare']}")
    check(int(value(driver, "off-roster")) == figures["offRoster"], f"{label}: learners off the roster")
    met = {"met": "Đạt", "not_met": "Chưa đạt", "no_roster": "Chưa đạt"}
    for year in ("2025", "2026"):
        shown = driver.find_element(By.ID, "meets" + year).text
        check(shown == met[figures["targets"][year]], f"{label}: target {year} shows {shown}")


def shot(driver, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        driver.set_window_size(1200, 2400)
        driver.save_screenshot(os.path.join(SHOTS, name + ".png"))


def main():
    work = tempfile.mkdtemp(prefix="hocvu-e2e-")
    db, keys = os.path.join(work, "hub.sqlite"), os.path.join(work, "keys")
    run("keygen", "--dir", keys)
    # The first enrollment creates the hub's database (docs/operations.md, "Daily work").
    run("hub", "enroll", "--db", db, "--keys", keys, "--commune", "70",
        "--identity", secrets.token_hex(32), "--transport", secrets.token_hex(32))
    run("hub", "roster", "import", "--db", db, "--keys", keys, os.path.join(ROOT, "ops", "sample", "roster.csv"))
    password = "mật khẩu e2e " + secrets.token_hex(8)
    pw = os.path.join(work, "pw")
    with open(pw, "w", encoding="utf-8") as f:
        f.write(password + "\n")
    run("hub", "user", "add", "e2e", "--scope", "national", "--db", db, "--keys", keys, "--password-file", pw)
    report = json.loads(run("hub", "report", "--format", "json", "--db", db))

    port = free_port()
    hub = subprocess.Popen(
        [HOCVU, "hub", "run", "--db", db, "--keys", keys, "--bind", "tcp://127.0.0.1:*",
         "--status", os.path.join(work, "status.json"), "--dashboard", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "hub.log"), "w"))
    base = f"http://127.0.0.1:{port}"
    driver = None
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/sign-in", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        options = Options()
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--lang=vi"):
            options.add_argument(a)
        options.binary_location = "/usr/bin/chromium"
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.set_page_load_timeout(30)

        # Sign in through the form (its CSRF token and cookie are the browser's own).
        driver.get(base + "/national")
        check(driver.current_url.endswith("/sign-in"), "an anonymous visitor is sent to sign in")
        check(driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "vi", "pages are Vietnamese")
        shot(driver, "1-sign-in")
        driver.find_element(By.ID, "name").send_keys("e2e")
        driver.find_element(By.ID, "password").send_keys("wrong password")
        driver.find_element(By.ID, "submit").click()
        deadline = time.time() + 15  # the refusal page comes after an Argon2id check
        while time.time() < deadline and not driver.find_elements(By.ID, "error"):
            time.sleep(0.05)
        check(len(driver.find_elements(By.ID, "error")) == 1, "a wrong password is refused on the page")
        driver.find_element(By.ID, "name").send_keys("e2e")
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.ID, "submit").click()
        url = wait_url(driver, "/national")
        check(url.endswith("/national"), f"signed in, a national viewer lands on /national ({url})")

        # Nation.
        check_unit(driver, report["national"], "nation")
        shot(driver, "2-nation")
        provinces = {p["code"]: p for p in report["provinces"]}
        rows = driver.find_elements(By.CSS_SELECTOR, "#units tr[data-code]")
        check(len(rows) == len(provinces), f"{len(rows)} province rows for {len(provinces)} provinces")
        target = next(p for p in report["provinces"] if p["figures"]["roster"] > 0)
        for row in rows:
            code = int(row.get_attribute("data-code"))
            cells = row.find_elements(By.CSS_SELECTOR, "td[data-value]")
            check(int(cells[0].get_attribute("data-value")) == provinces[code]["figures"]["roster"], f"province {code} row: roster")
            check(int(cells[2].get_attribute("data-value")) == provinces[code]["figures"]["rosterCertified"], f"province {code} row: certified")

        # Province: follow its link.
        driver.find_element(By.CSS_SELECTOR, f"#units tr[data-code='{target['code']}'] a").click()
        check(wait_url(driver, f"/province/{target['code']}").endswith(f"/province/{target['code']}"), "the province link opens its page")
        check_unit(driver, target["figures"], f"province {target['code']}")
        shot(driver, "3-province")
        communes = [c for c in report["communes"] if c["provinceCode"] == target["code"]]
        rows = driver.find_elements(By.CSS_SELECTOR, "#units tr[data-code]")
        check(len(rows) == len(communes), f"{len(rows)} commune rows for {len(communes)} communes of province {target['code']}")
        commune = next(c for c in communes if c["figures"]["roster"] > 0)

        # Commune: its roster, by name.
        driver.find_element(By.CSS_SELECTOR, f"#units tr[data-code='{commune['code']}'] a").click()
        check(wait_url(driver, f"/commune/{commune['code']}").endswith(f"/commune/{commune['code']}"), "the commune link opens its page")
        check_unit(driver, commune["figures"], f"commune {commune['code']}")
        members = driver.find_elements(By.CSS_SELECTOR, "#members tr[data-stage]")
        check(len(members) == commune["figures"]["roster"], f"{len(members)} roster members shown for a roster of {commune['figures']['roster']}")
        certified = [m for m in members if m.get_attribute("data-stage") == "certified"]
        check(len(certified) == commune["figures"]["rosterCertified"], "members shown as certified")
        shot(driver, "4-commune")
    finally:
        if driver:
            driver.quit()
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(timeout=10)
        except subprocess.TimeoutExpired:
            hub.kill()
        check(hub.returncode == 0, f"the hub stops cleanly on SIGTERM (status {hub.returncode})")
        audit = run("hub", "user", "audit", "--db", db)
        check(f"view_roster\tcommune:{commune['code']}/html" in audit if "commune" in locals() else False, "the commune page view is in the audit trail")
        subprocess.run(["rm", "-rf", work])

    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
