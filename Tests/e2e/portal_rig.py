"""A real hub and a real site (with its learner portal) on loopback, for the portal's end-to-end
checks: keys, a one-admin trust file, a signed release of the sample curriculum (optionally with a
generated ~210 MiB WebM lesson video), enrollment, both daemons, the release published over CURVE
and installed at the site, and an operator account. Used by portal_e2e.py (Chromium) and
portal_api_check.py (schemathesis)."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPERATOR_PASSWORD = "mật khẩu cán bộ e2e 2026"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate, seconds=60, step=0.2):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    print(f"timed out waiting for {what}", file=sys.stderr)
    return None


def make_video(path):
    """~210 MiB of real VP8 video: a 10 s noisy test pattern (incompressible), looped 9 times without re-encoding."""
    clip = path + ".clip.webm"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25,noise=alls=60:allf=t",
                    "-t", "10", "-c:v", "libvpx", "-b:v", "20M", "-minrate", "20M", "-maxrate", "20M", "-bufsize", "20M",
                    "-deadline", "realtime", "-cpu-used", "8", clip], check=True, timeout=300)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", "8", "-i", clip, "-c", "copy", path], check=True, timeout=300)
    os.remove(clip)


class Rig:
    """Everything runs in `work`; `stop()` ends the daemons."""

    def __init__(self, hocvu, work, video=False):
        self.hocvu, self.work, self.procs = hocvu, work, []
        hub_keys = self.keys_of(self.run("keygen", "--dir", f"{work}/hub/keys"))
        site_keys = self.keys_of(self.run("keygen", "--dir", f"{work}/site/keys"))
        self.run("admin", "keygen", "--dir", f"{work}/admin", "--name", "Quản trị e2e")
        self.run("admin", "trust", "--threshold", "1", "--out", f"{work}/trust.json", f"{work}/admin/admin.pub.json")
        src = f"{work}/curriculum"
        shutil.copytree(os.path.join(ROOT, "curriculum", "sample"), src)
        self.curriculum = json.load(open(f"{src}/curriculum.json"))
        self.video_size = 0
        if video:
            os.makedirs(f"{src}/media", exist_ok=True)
            make_video(f"{src}/media/ksn-101-video.webm")
            self.video_size = os.path.getsize(f"{src}/media/ksn-101-video.webm")
            lesson = self.curriculum["courses"][0]["lessons"][0]
            lesson["files"] = [f for f in lesson["files"] if not f.endswith(".bin")] + ["media/ksn-101-video.webm"]
        else:
            self.run("admin", "release", "sample-media", src)
        json.dump(self.curriculum, open(f"{src}/curriculum.json", "w"), ensure_ascii=False)
        self.run("admin", "release", "build", src, "--version", "1", "--out", f"{work}/release-1")
        self.run("admin", "release", "sign", f"{work}/release-1", "--keys", f"{work}/admin")
        self.site_db = ["--db", f"{work}/site/site.sqlite", "--keys", f"{work}/site/keys"]
        self.hub_db = f"{work}/hub/hub.sqlite"
        self.run("hub", "enroll", "--db", self.hub_db, "--keys", f"{work}/hub/keys", "--commune", "70",
                 "--identity", site_keys["identity"], "--transport", site_keys["transport"])

        hub_port, portal_port = free_port(), free_port()
        self.procs.append(subprocess.Popen(
            [hocvu, "hub", "run", "--db", self.hub_db, "--keys", f"{work}/hub/keys", "--bind", f"tcp://127.0.0.1:{hub_port}",
             "--trust", f"{work}/trust.json", "--chunks", f"{work}/hub/chunks"],
            stdout=subprocess.DEVNULL, stderr=open(f"{work}/hub.log", "w")))
        site_log = f"{work}/site.log"
        self.procs.append(subprocess.Popen(
            [hocvu, "site", "run", *self.site_db, "--hub", f"tcp://127.0.0.1:{hub_port}",
             "--hub-key", hub_keys["transport"], "--hub-identity", hub_keys["identity"], "--trust", f"{work}/trust.json",
             "--chunks", f"{work}/site/chunks", "--portal", f"127.0.0.1:{portal_port}"],
            stdout=subprocess.DEVNULL, stderr=open(site_log, "w")))
        self.base = f"http://127.0.0.1:{portal_port}"
        self.listening = wait_for("the portal", self.reachable)
        self.run("admin", "release", "publish", f"{work}/release-1", "--hub", f"tcp://127.0.0.1:{hub_port}",
                 "--hub-key", hub_keys["transport"], "--keys", f"{work}/admin")
        self.installed = wait_for("release 1 at the site", lambda: "Release installed" in open(site_log).read(), seconds=240)
        with open(f"{work}/operator-password", "w") as f:
            f.write(OPERATOR_PASSWORD + "\n")
        self.run("site", "user", "add", "canbo", *self.site_db, "--password-file", f"{work}/operator-password")

    def run(self, *argv):
        r = subprocess.run([self.hocvu, *argv], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            self.stop()
            sys.exit(f"hocvu {' '.join(argv)} exited {r.returncode}: {r.stderr}")
        return r.stdout

    @staticmethod
    def keys_of(text):
        return {line.split()[0]: line.split()[1] for line in text.splitlines() if len(line.split()) == 2}

    def reachable(self):
        try:
            return urllib.request.urlopen(self.base + "/sign-in", timeout=1).status == 200
        except OSError:
            return False

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs = []
