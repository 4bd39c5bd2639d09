"""First-run cost of skunroll: import time, numba compilation and cache loads.

Every measurement runs in a fresh subprocess whose ``NUMBA_CACHE_DIR`` is a
new, empty temporary directory (the "cold" run); a second process then reuses
that directory (the "warm" run, kernels loaded from numba's on-disk cache).
Measured, per checkout:

1. ``import skunroll`` (cold and warm cache);
2. the first ``skunroll.sparse_encode`` call (default algorithm, float64,
   8 samples x 16 features, 32 atoms) cold and warm, and import + first call
   warm (target: at most 2 s on an idle machine);
3. ``python -m skunroll demo`` end to end, cold and warm; the difference is
   about the compile time (target: at most 20 s on an idle machine). The demo
   child runs the ``skunroll`` package's ``__main__`` with ``runpy`` (what
   ``python -m skunroll demo`` does), with a numba compile-event listener that
   also sums the compile time directly, in wall time and in the compiling
   thread's CPU time (``time.thread_time``: numba compiles in the calling
   thread, so on an idle machine the two agree, and on a loaded one the CPU
   time is the figure that does not depend on the load; target: at most
   20 s). ``--quick`` skips the demo;
4. the numba dispatchers compiled by the cold demo run (or, with ``--quick``,
   by the cold first call): every ``CPUDispatcher`` found in skunroll's
   modules or seen compiling, with ``len(d.signatures)``, its compile time and
   its signatures, sorted by count, with the argument positions whose types
   differ between signatures (array layout C/A/F, readonly, dtype, integer
   width, literal types), i.e. the specialisations that may be needless.

``--variants`` adds a cold process that calls ``sparse_encode`` with the
lasso, fista, unrolled and omp algorithms on float64 C-ordered, F-ordered,
strided and readonly inputs and on float32 inputs, timing each first call
(0 s: nothing new compiled) and listing the dispatchers it compiled.

``--root PATH`` (repeatable) measures the checkout at PATH: PATH is prepended
to ``PYTHONPATH`` in the subprocesses (which run from a temporary directory),
and the ``skunroll.__file__`` they import is printed. With several roots the
runs are interleaved (repeat 1 of every root, then repeat 2, ...). Times are
medians over ``--repeats`` cold/warm pairs. Process times include interpreter
start-up; the other times are taken inside the child with ``perf_counter``.

Run: ``python benchmarks/bench_first_run.py [--root PATH ...] [--repeats N]
[--quick] [--variants] [--json PATH]``
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.abspath(__file__)


# --------------------------------------------------------------------------
# child side (runs inside the measured subprocess)
# --------------------------------------------------------------------------


class _CompileRecorder:
    """numba ``numba:compile`` events: per-dispatcher inclusive compile time
    and the top-level (non-nested) total. Cache loads raise no such event."""

    def __init__(self):
        from numba.core import event

        self.per = {}  # id(dispatcher) -> [dispatcher, n_compiles, seconds]
        self.depth = 0
        self.top_level_s = 0.0
        self.top_level_cpu_s = 0.0
        self._starts = []
        recorder = self

        class Listener(event.Listener):
            def on_start(self, ev):
                recorder.depth += 1
                recorder._starts.append((time.perf_counter(), time.thread_time()))

            def on_end(self, ev):
                t0, c0 = recorder._starts.pop()
                dt = time.perf_counter() - t0
                recorder.depth -= 1
                if recorder.depth == 0:
                    recorder.top_level_s += dt
                    recorder.top_level_cpu_s += time.thread_time() - c0
                d = ev.data["dispatcher"]
                rec = recorder.per.setdefault(id(d), [d, 0, 0.0])
                rec[1] += 1
                rec[2] += dt

        event.register("numba:compile", Listener())


def _dispatcher_name(d):
    f = d.py_func
    return f"{f.__module__}.{f.__qualname__}"


def _type_key(t):
    """Describe one numba type by the properties that split specialisations."""
    from numba.core import types

    if isinstance(t, types.Array):
        return {
            "kind": "array",
            "dtype": str(t.dtype),
            "ndim": t.ndim,
            "layout": t.layout,
            "readonly": not t.mutable,
        }
    if isinstance(t, types.Literal):
        return {"kind": "literal", "type": str(t)}
    if isinstance(t, types.Integer):
        return {"kind": "int", "type": str(t)}
    if isinstance(t, types.Float):
        return {"kind": "float", "type": str(t)}
    return {"kind": "other", "type": str(t)}


def _variation(keys):
    """What differs among the distinct types seen at one argument position."""
    kinds = {k["kind"] for k in keys}
    notes = []
    if kinds == {"array"}:
        for field in ("layout", "readonly", "dtype", "ndim"):
            vals = sorted({str(k[field]) for k in keys})
            if len(vals) > 1:
                notes.append(f"{field} {'/'.join(vals)}")
        return ", ".join(notes)
    if "literal" in kinds:
        notes.append("literal")
    vals = sorted({k.get("type", k["kind"]) for k in keys})
    notes.append("/".join(vals))
    return " ".join(notes)


def _collect_dispatchers(recorder):
    import inspect

    from numba.core.registry import CPUDispatcher

    found = {}
    for name, mod in list(sys.modules.items()):
        if mod is None or not (name == "skunroll" or name.startswith("skunroll.")):
            continue
        for obj in list(vars(mod).values()):
            if isinstance(obj, CPUDispatcher):
                found[id(obj)] = obj
    compile_s, n_compiles = {}, {}
    if recorder is not None:
        for key, (d, n, s) in recorder.per.items():
            if isinstance(d, CPUDispatcher):
                found[key] = d
            compile_s[key], n_compiles[key] = s, n
    rows = []
    for key, d in found.items():
        sigs = list(d.signatures)
        if not sigs:
            continue
        try:
            params = list(inspect.signature(d.py_func).parameters)
        except (TypeError, ValueError):
            params = []
        varying = []
        for i in range(max(len(s) for s in sigs)):
            distinct = {str(s[i]): s[i] for s in sigs if i < len(s)}
            if len(distinct) > 1:
                arg = params[i] if i < len(params) else f"arg{i}"
                keys = [_type_key(t) for t in distinct.values()]
                varying.append(f"{arg}: {_variation(keys)}")
        rows.append(
            {
                "name": _dispatcher_name(d),
                "n_signatures": len(sigs),
                "n_compiles": n_compiles.get(key, 0),
                "compile_s": compile_s.get(key, 0.0),
                "cache_hits": int(sum(d.stats.cache_hits.values())),
                "signatures": [", ".join(str(t) for t in s) for s in sigs],
                "varying": varying,
            }
        )
    rows.sort(key=lambda r: (-r["n_signatures"], -r["compile_s"], r["name"]))
    return rows


def _child(mode, out_path):
    t_start = time.perf_counter()
    recorder = _CompileRecorder()
    res = {}
    if mode == "first_call":
        t0 = time.perf_counter()
        import skunroll

        res["import_s"] = time.perf_counter() - t0
        import numpy as np

        rng = np.random.default_rng(0)
        D = rng.standard_normal((32, 16))
        X = rng.standard_normal((8, 16))
        t0 = time.perf_counter()
        skunroll.sparse_encode(X, D, alpha=0.1)
        res["first_call_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        skunroll.sparse_encode(X, D, alpha=0.1)
        res["second_call_s"] = time.perf_counter() - t0
    elif mode == "variants":
        import warnings

        import numpy as np

        import skunroll

        rng = np.random.default_rng(0)
        D = rng.standard_normal((32, 16))
        X = rng.standard_normal((8, 16))
        X_ro, D_ro = X.copy(), D.copy()
        X_ro.setflags(write=False)
        D_ro.setflags(write=False)
        inputs = {
            "float64 C": (X, D),
            "float64 F": (np.asfortranarray(X), np.asfortranarray(D)),
            "float64 strided": (np.repeat(X, 2, axis=1)[:, ::2], D),
            "float64 readonly": (X_ro, D_ro),
            "float32 C": (X.astype(np.float32), D.astype(np.float32)),
        }
        res["variant_s"] = {}
        for algo in ("lasso", "fista", "unrolled", "omp"):
            for label, (Xv, Dv) in inputs.items():
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    skunroll.sparse_encode(
                        Xv, Dv, algorithm=algo, alpha=0.1, n_nonzero_coefs=3
                    )
                res["variant_s"][f"{algo} {label}"] = time.perf_counter() - t0
    elif mode == "demo":
        import contextlib
        import io
        import runpy

        sys.argv = ["skunroll", "demo"]
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            runpy.run_module("skunroll", run_name="__main__", alter_sys=True)
        res["demo_lines"] = len(buf.getvalue().splitlines())
        import skunroll
    else:
        raise ValueError(mode)
    res["child_s"] = time.perf_counter() - t_start
    res["skunroll_file"] = skunroll.__file__
    res["compile_event_s"] = recorder.top_level_s
    res["compile_cpu_s"] = recorder.top_level_cpu_s
    res["dispatchers"] = _collect_dispatchers(recorder)
    with open(out_path, "w") as f:
        json.dump(res, f)


# --------------------------------------------------------------------------
# parent side
# --------------------------------------------------------------------------


def _env(root, cache_dir):
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = cache_dir
    if root is not None:
        old = env.get("PYTHONPATH")
        env["PYTHONPATH"] = root + (os.pathsep + old if old else "")
    return env


def _spawn(mode, root, cache_dir, workdir, timeout):
    """Run one child; returns its result dict plus the process wall time."""
    out = os.path.join(workdir, f"{mode}-{time.monotonic_ns()}.json")
    cmd = [sys.executable, HERE, "--child", mode, "--child-out", out]
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd,
        env=_env(root, cache_dir),
        cwd=workdir,  # not a checkout: nothing shadows PYTHONPATH
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"child {mode} failed for root {root}:\n{proc.stderr[-4000:]}")
    with open(out) as f:
        res = json.load(f)
    res["process_s"] = wall
    return res


def _one_pair(mode, root, workdir, timeout):
    """A cold run in a new empty cache dir, then a warm run reusing it."""
    cache_dir = tempfile.mkdtemp(prefix="numba-cache-", dir=workdir)
    cold = _spawn(mode, root, cache_dir, workdir, timeout)
    warm = _spawn(mode, root, cache_dir, workdir, timeout)
    return cold, warm


METRICS = [
    # (label, mode, key(cold, warm) -> seconds, target)
    ("import skunroll, cold cache", "first_call", lambda c, w: c["import_s"], ""),
    ("import skunroll, warm cache", "first_call", lambda c, w: w["import_s"], ""),
    ("first sparse_encode, cold", "first_call", lambda c, w: c["first_call_s"], ""),
    ("first sparse_encode, warm", "first_call", lambda c, w: w["first_call_s"], ""),
    ("second sparse_encode call", "first_call", lambda c, w: w["second_call_s"], ""),
    (
        "import + first call, warm",
        "first_call",
        lambda c, w: w["import_s"] + w["first_call_s"],
        "<= 2",
    ),
    ("first-call process, cold", "first_call", lambda c, w: c["process_s"], ""),
    ("first-call process, warm", "first_call", lambda c, w: w["process_s"], ""),
    ("demo process, cold cache", "demo", lambda c, w: c["process_s"], ""),
    ("demo process, warm cache", "demo", lambda c, w: w["process_s"], ""),
    (
        "demo cold - warm",
        "demo",
        lambda c, w: c["process_s"] - w["process_s"],
        "<= 20",
    ),
    ("demo compile events, cold", "demo", lambda c, w: c["compile_event_s"], ""),
    ("demo compile events, warm", "demo", lambda c, w: w["compile_event_s"], ""),
    (
        "demo compile CPU time, cold",
        "demo",
        lambda c, w: c["compile_cpu_s"],
        "<= 20",
    ),
]


def _print_table(roots, labels, results, modes):
    header = ["metric (s, median)"] + labels + ["target"]
    rows = []
    for label, mode, key, target in METRICS:
        if mode not in modes:
            continue
        row = [label]
        for root in roots:
            vals = [key(c, w) for c, w in results[root][mode]]
            runs = " ".join(f"{v:.2f}" for v in vals)
            row.append(f"{statistics.median(vals):.2f} ({runs})")
        rows.append(row + [target])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(fmt.format(*row))


def _print_dispatchers(label, source, rows, all_internal=False):
    n_sigs = sum(r["n_signatures"] for r in rows)
    multi = [r for r in rows if r["n_signatures"] > 1]
    print(
        f"\nnumba dispatchers compiled by the cold {source} run, {label}: "
        f"{len(rows)} dispatchers, {n_sigs} signatures, "
        f"{len(multi)} with more than one"
    )
    print(f"{'n':>3}  {'compile s':>9}  name (compile s: inclusive of callees)")
    internal = {}
    for r in rows:
        if not r["name"].startswith("skunroll") and not all_internal:
            agg = internal.setdefault(r["name"], [0, 0, 0.0])
            agg[0] += 1
            agg[1] += r["n_signatures"]
            agg[2] += r["compile_s"]
            continue
        print(f"{r['n_signatures']:>3}  {r['compile_s']:>9.2f}  {r['name']}")
        if r["varying"]:
            print(f"{'':>16}varies: {'; '.join(r['varying'])}")
        for s in r["signatures"]:
            print(f"{'':>16}({s})")
    if internal:
        print(
            "numba-internal overload implementations (one dispatcher per "
            "resolution; --all-internal lists them):"
        )
        print(f"{'n':>3}  {'compile s':>9}  name  [dispatchers]")
        for name, (n_d, n_s, t) in sorted(internal.items(), key=lambda x: -x[1][2]):
            print(f"{n_s:>3}  {t:>9.2f}  {name}  [{n_d}]")


def _print_variants(labels, roots, variants):
    keys = list(next(iter(variants.values()))["variant_s"])
    print("\nfirst call per input variant, cold cache, in this order (s):")
    header = ["algorithm, input"] + labels
    widths = [max(len(k) for k in keys + [header[0]])] + [8] * len(labels)
    print(
        "  ".join(
            f"{h:<{w}}" if i == 0 else f"{h:>{w}}"
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    for k in keys:
        vals = [f"{variants[r]['variant_s'][k]:>8.2f}" for r in roots]
        print(f"{k:<{widths[0]}}  " + "  ".join(vals))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--root",
        action="append",
        default=None,
        help="checkout to measure (prepended to PYTHONPATH; repeatable, runs "
        "interleaved); default: the skunroll that imports here",
    )
    parser.add_argument("--repeats", type=int, default=3, help="cold/warm pairs")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="skip the demo (step 3); step 4 then lists the first-call run's "
        "dispatchers",
    )
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds per child process"
    )
    parser.add_argument(
        "--no-dispatchers", action="store_true", help="skip the dispatcher list"
    )
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also call sparse_encode (lasso, fista, unrolled, omp) on float64 "
        "C/F/strided/readonly and float32 inputs in a cold process and list the "
        "dispatchers that compiled",
    )
    parser.add_argument(
        "--all-internal",
        action="store_true",
        help="list numba-internal dispatchers one by one",
    )
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.child_out)
        return

    roots = [os.path.abspath(r) for r in args.root] if args.root else [None]
    modes = ["first_call"] if args.quick else ["first_call", "demo"]
    results = {root: {m: [] for m in modes} for root in roots}
    with tempfile.TemporaryDirectory(prefix="bench-first-run-") as workdir:
        # prime Python's bytecode and the OS file cache (numba cache discarded)
        for root in roots:
            _one_pair("first_call", root, workdir, args.timeout)
        for rep in range(args.repeats):
            for mode in modes:
                for root in roots:
                    t0 = time.perf_counter()
                    pair = _one_pair(mode, root, workdir, args.timeout)
                    results[root][mode].append(pair)
                    print(
                        f"# repeat {rep + 1}/{args.repeats} {mode:<10} "
                        f"{root or '(default)'}: {time.perf_counter() - t0:.1f} s",
                        file=sys.stderr,
                        flush=True,
                    )
        variants = {}
        if args.variants:
            for root in roots:
                cache_dir = tempfile.mkdtemp(prefix="numba-cache-", dir=workdir)
                variants[root] = _spawn(
                    "variants", root, cache_dir, workdir, args.timeout
                )

    labels = []
    print()
    for i, root in enumerate(roots):
        cold = results[root]["first_call"][0][0]
        labels.append(f"[{i + 1}]")
        print(f"[{i + 1}] --root {root or '(none)'}: {cold['skunroll_file']}")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"{args.repeats} repeats; load average at the end "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )
    _print_table(roots, labels, results, modes)
    if not args.no_dispatchers:
        source = "first_call" if args.quick else "demo"
        for label, root in zip(labels, roots, strict=True):
            cold = results[root][source][0][0]
            _print_dispatchers(
                f"{label} {root}", source, cold["dispatchers"], args.all_internal
            )
    if variants:
        _print_variants(labels, roots, variants)
        for label, root in zip(labels, roots, strict=True):
            _print_dispatchers(
                f"{label} {root}",
                "variants",
                variants[root]["dispatchers"],
                args.all_internal,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "variants": variants}, f)


if __name__ == "__main__":
    main()
