"""How good is the sweep ETA (docs/progress.md)? Train a small CPU ladder with `sweep run` (--jobs auto), poll the
store's recorded sweep ETA every second, and compare it with the time the sweep really took."""
import json, sqlite3, subprocess, sys, time
from pathlib import Path
from scalinglab.train.corpus import synthetic_corpus
from scalinglab.sweep.plan import plan_sweep, write_plan

d = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bench_sweep_eta"); d.mkdir(parents=True, exist_ok=True)
corpus = d / "c.bin"; db = d / "s.db"
if not corpus.exists():
    synthetic_corpus(corpus, n_tokens=400_000, vocab_size=64)
write_plan(plan_sweep([3e10, 1e11], sizes_per_budget=3, corpus=corpus), db, overwrite=True).close()
t0 = time.time()
proc = subprocess.Popen([sys.executable, "-c", "from scalinglab.cli import main; main()", "sweep", "run", str(db),
                         "--device", "cpu", "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
samples = []
while proc.poll() is None:
    time.sleep(1.0)
    try:
        con = sqlite3.connect(db, timeout=5)
        row = con.execute("SELECT value FROM meta WHERE key='progress'").fetchone()
        con.close()
    except sqlite3.Error:
        continue
    if row:
        p = json.loads(row[0])
        if p.get("eta_seconds") is not None:
            samples.append((time.time() - t0, p["eta_seconds"] - (time.time() - p["updated"])))
total = time.time() - t0
print(f"sweep took {total:.1f} s, rc {proc.returncode}, {len(samples)} samples")
for frac in (0.1, 0.25, 0.5, 0.75, 0.9):
    t = frac * total
    s = min(samples, key=lambda x: abs(x[0] - t))
    actual = total - s[0]
    print(f"at {s[0]:6.1f} s ({frac:.0%}): ETA {s[1]:7.1f} s, actual {actual:7.1f} s, error {100*(s[1]-actual)/actual:+.0f}%")
