"""`lapo-verl doctor` runs its fresh-process checks together (one process per environment): a failing or crashing
check is still reported as itself, with its own output, and the others still run."""

from lapo_verl.doctor import Probe, run_probes


def test_probes_share_a_process_per_environment_and_fail_one_by_one():
    results = run_probes([
        Probe("first", "import os; print(os.getpid())"),
        Probe("broken", "raise ImportError('no module named nowhere')"),
        Probe("after", "import os; print(os.getpid())"),
        Probe("other env", "import os; print(os.environ['LAPO_DOCTOR_TEST'], os.getpid())",
              env=(("LAPO_DOCTOR_TEST", "set"),)),
    ])
    assert results["first"][0] and results["after"][0]
    assert results["first"][1] == results["after"][1]  # the same process
    ok, out = results["broken"]
    assert not ok and "ImportError: no module named nowhere" in out and "Traceback" in out
    ok, out = results["other env"]
    assert ok and out.split()[0] == "set" and out.split()[1] != results["first"][1]


def test_a_probe_that_kills_its_process_fails_with_the_processes_output():
    results = run_probes([Probe("fine", "print('fine')"),
                          Probe("dies", "import os, sys; sys.stderr.write('segfault-like exit\\n'); os._exit(3)"),
                          Probe("never ran", "print('unreachable')")])
    assert results["fine"] == (True, "fine")
    for name in ("dies", "never ran"):
        ok, out = results[name]
        assert not ok and "ended before it reported" in out
