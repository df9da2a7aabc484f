#!/usr/bin/python3
"""schemathesis (PyPI) against the learning-app API of a running site daemon: a real hub and site
(portal_rig.py), a learner registered through the operator's pages, an app token from
`hocvu site app add`. Every generated request must get no 5xx and a response the OpenAPI document
(docs/api/openapi.json, served at /api/v1/openapi.json) allows: status, content type, headers and
body schema.

Usage: Tests/e2e/portal_api_check.py path/to/hocvu path/to/schemathesis
"""
import http.cookiejar
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from portal_rig import OPERATOR_PASSWORD, Rig  # noqa: E402

HOCVU, SCHEMATHESIS = os.path.abspath(sys.argv[1]), sys.argv[2]


def register_learner(base):
    """Through the operator's pages, as a browser would (cookies, CSRF tokens); returns the code."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def csrf(path):
        page = opener.open(base + path).read().decode()
        return re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)

    def post(path, fields):
        return opener.open(base + path, urllib.parse.urlencode(fields).encode()).read().decode()

    post("/operator/sign-in", {"csrf": csrf("/operator/sign-in"), "name": "canbo", "secret": OPERATOR_PASSWORD})
    page = post("/operator/learners", {
        "csrf": csrf("/operator"), "national_id": "001270444001", "full_name": "Võ Văn Ứng Dụng", "role": "civil_servant",
        "unit": "UBND phường", "home_commune": "70", "pin": "975310"})
    return re.search(r"Mã học viên: ([0-9]{8})", page).group(1)


def main():
    work = tempfile.mkdtemp(prefix="hocvu-portal-api-")
    rig = Rig(HOCVU, work)
    try:
        if not (rig.listening and rig.installed):
            sys.exit("the site did not start its portal or install the release; see " + work)
        code = register_learner(rig.base)
        token = rig.run("site", "app", "add", "schemathesis", *rig.site_db).strip()
        env = dict(os.environ, HOCVU_API_TOKEN=token, HOCVU_LEARNER_CODE=code)
        config = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemathesis.toml")
        r = subprocess.run(
            [SCHEMATHESIS, "--config-file", config, "run", rig.base + "/api/v1/openapi.json", "--workers", "1",
             "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
             "--phases", "examples,coverage,fuzzing"],
            env=env, timeout=900)
        status = r.returncode
    finally:
        rig.stop()
    if status == 0:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work} (site.log, hub.log)", file=sys.stderr)
    sys.exit(status)


if __name__ == "__main__":
    main()
