#!/usr/bin/python3
"""Benchmarks of a site's learner portal (BENCHMARKS.md, "Portal"), each against its baseline in the
same run, on loopback:

1. A commune classroom: 50 learners signed in, 50 concurrent connections (wrk), each request with
   one of the 50 sessions, on the course list and on a lesson page: p50 / p99 latency.
2. A 210 MiB WebM lesson video served with Range requests (4 MiB at random offsets, 4 connections)
   from the chunk store, against nginx (Debian) serving the same bytes from a plain file: MiB/s.
3. Quiz submissions per second through the API (each a graded, signed, fsynced attempt; 8
   connections, a fresh id per request).

Needs a release build (swift build -c release --product hocvu), wrk, nginx and ffmpeg (Debian).
Usage: ops/bench-portal.py [path/to/hocvu] [--seconds N]
"""
import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Tests", "e2e"))
from portal_rig import OPERATOR_PASSWORD, Rig, free_port, wait_for  # noqa: E402

args = [a for a in sys.argv[1:] if not a.startswith("--")]
HOCVU = os.path.abspath(args[0]) if args else os.path.join(ROOT, ".build", "release", "hocvu")
SECONDS = int(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 20
LEARNERS = 50


def opener():
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def csrf(o, url):
    return re.search(r'name="csrf" value="([0-9a-f]{64})"', o.open(url).read().decode()).group(1)


def wrk(url, script, connections, seconds=SECONDS, threads=2):
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", script, url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    def lat(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    tr = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", out)
    mib = float(tr.group(1)) * {"B": 1 / 2**20, "KB": 1 / 1024, "MB": 1, "GB": 1024}[tr.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"p50_ms": lat(50), "p99_ms": lat(99), "rps": rps, "mib_s": mib, "non2xx": int(non2xx.group(1)) if non2xx else 0, "raw": out}


def main():
    work = tempfile.mkdtemp(prefix="hocvu-bench-portal-")
    rig = Rig(HOCVU, work, video=True)
    nginx = None
    try:
        assert rig.listening and rig.installed, "portal or release missing; see " + work
        base = rig.base
        # 50 learners registered through the operator's pages, then 50 sessions.
        op = opener()
        op.open(base + "/operator/sign-in", urllib.parse.urlencode(
            {"csrf": csrf(op, base + "/operator/sign-in"), "name": "canbo", "secret": OPERATOR_PASSWORD}).encode()).read()
        codes = []
        for i in range(LEARNERS):
            page = op.open(base + "/operator/learners", urllib.parse.urlencode({
                "csrf": csrf(op, base + "/operator"), "national_id": f"0012709{i:05d}", "full_name": f"Học viên {i}",
                "role": "civil_servant", "unit": "UBND", "home_commune": "70", "pin": "123456"}).encode()).read().decode()
            codes.append(re.search(r"Mã học viên: ([0-9]{8})", page).group(1))
        sessions = []
        for code in codes:
            jar = http.cookiejar.CookieJar()
            o = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            o.open(base + "/sign-in", urllib.parse.urlencode({"csrf": csrf(o, base + "/sign-in"), "name": code, "secret": "123456"}).encode()).read()
            sessions.append(next(c.value for c in jar if c.name == "hocvu_portal"))
        lua = os.path.join(work, "sessions.lua")
        with open(lua, "w") as f:
            f.write("local s = {" + ",".join(f'"{t}"' for t in sessions) + "}\nlocal n = 0\n"
                    "request = function()\n  n = n + 1\n  return wrk.format(nil, nil, {Cookie = 'hocvu_portal=' .. s[(n % #s) + 1]})\nend\n")
        # Warm: every learner opens the lesson once (its first view records "started").
        lesson = rig.curriculum["courses"][0]["lessons"][1]["id"]
        for t in sessions:
            urllib.request.urlopen(urllib.request.Request(f"{base}/learn/lesson/{lesson}", headers={"Cookie": f"hocvu_portal={t}"})).read()
        results = {"learners": LEARNERS, "seconds": SECONDS}
        results["course_list"] = wrk(base + "/learn", lua, LEARNERS)
        results["lesson_page"] = wrk(f"{base}/learn/lesson/{lesson}", lua, LEARNERS)

        # The video: chunk store (Range) vs nginx serving the same bytes from a plain file.
        video = f"{work}/curriculum/media/ksn-101-video.webm"
        size = os.path.getsize(video)
        video_lesson = rig.curriculum["courses"][0]["lessons"][0]["id"]
        index = rig.curriculum["courses"][0]["lessons"][0]["files"].index("media/ksn-101-video.webm")
        nginx_port = free_port()
        os.makedirs(f"{work}/nginx/www", exist_ok=True)
        for d in (work, f"{work}/nginx", f"{work}/nginx/www"):  # nginx's workers run as nobody
            os.chmod(d, 0o755)
        shutil.copy(video, f"{work}/nginx/www/video.webm")
        os.chmod(f"{work}/nginx/www/video.webm", 0o644)
        with open(f"{work}/nginx/nginx.conf", "w") as f:
            f.write(f"""worker_processes 2; pid {work}/nginx/nginx.pid; error_log {work}/nginx/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; tcp_nopush on; client_body_temp_path {work}/nginx;
  proxy_temp_path {work}/nginx; fastcgi_temp_path {work}/nginx; uwsgi_temp_path {work}/nginx; scgi_temp_path {work}/nginx;
  server {{ listen 127.0.0.1:{nginx_port}; root {work}/nginx/www; }} }}
""")
        nginx = subprocess.Popen(["nginx", "-c", f"{work}/nginx/nginx.conf", "-g", "daemon off;"], stderr=subprocess.DEVNULL)
        wait_for("nginx", lambda: _ok(f"http://127.0.0.1:{nginx_port}/video.webm"))
        ranges = os.path.join(work, "ranges.lua")
        with open(ranges, "w") as f:
            f.write(f"local size = {size}\nlocal span = 4 * 1024 * 1024\nlocal cookie = '{sessions[0]}'\nmath.randomseed(7)\n"
                    "request = function()\n  local a = math.random(0, size - span)\n"
                    "  return wrk.format(nil, nil, {Range = 'bytes=' .. a .. '-' .. (a + span - 1), Cookie = 'hocvu_portal=' .. cookie})\nend\n")
        runs = []
        for _ in range(2):  # alternated, so a noisy neighbour hurts both alike
            runs.append(("portal", wrk(f"{base}/media/{video_lesson}/{index}", ranges, 4, seconds=max(10, SECONDS // 2))))
            runs.append(("nginx", wrk(f"http://127.0.0.1:{nginx_port}/video.webm", ranges, 4, seconds=max(10, SECONDS // 2))))
        for name in ("portal", "nginx"):
            figures = sorted(r["mib_s"] for n, r in runs if n == name)
            results[f"video_{name}_mib_s"] = figures
        results["video_bytes"] = size
        results["video_ratio"] = max(results["video_portal_mib_s"]) / max(results["video_nginx_mib_s"])

        # Quiz submissions through the API: each request a new id, so each is a graded, recorded attempt.
        token = rig.run("site", "app", "add", "bench", *rig.site_db).strip()
        quiz = rig.curriculum["courses"][0]["quizzes"][0]
        answers = json.dumps([q["answer"] for q in quiz["questions"]])
        post = os.path.join(work, "attempts.lua")
        with open(post, "w") as f:
            f.write("local n = 0\nlocal t = 0\nsetup = function(thread) t = t + 1; thread:set('id', t) end\n"
                    "request = function()\n  n = n + 1\n"
                    f"  local body = '{{\"id\":\"b' .. id .. '-' .. n .. '\",\"quiz\":\"{quiz['id']}\",\"answers\":{answers}}}'\n"
                    f"  return wrk.format('POST', nil, {{['Content-Type'] = 'application/json', Authorization = 'Bearer {token}'}}, body)\nend\n")
        results["quiz_submissions"] = wrk(f"{base}/api/v1/learners/{codes[0]}/attempts", post, 8)
        for k in ("course_list", "lesson_page", "quiz_submissions"):
            results[k].pop("raw")
        print(json.dumps(results, indent=2))
    finally:
        if nginx:
            nginx.terminate()
            nginx.wait()
        rig.stop()
        shutil.rmtree(work, ignore_errors=True)


def _ok(url):
    try:
        return urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=1).status == 200
    except OSError:
        return False


if __name__ == "__main__":
    main()
