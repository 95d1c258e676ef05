"""labhelpers.execution: generated code runs in a subprocess with a timeout, and its tests come from the question."""

from __future__ import annotations

import os
import time

import pytest

from labhelpers import execution
from labhelpers.execution import CodeTest, code_test_for, pass_rate, passes_tests, run_program

ADD = "Write a Python function total that adds x and y."
SUBTRACT = "Write a Python function f that subtracts a and b."
LOOP = "Write a loop over i that prints the numbers from 2 to 5."


def test_a_right_function_passes_whatever_its_parameter_names():
    assert passes_tests(ADD, "def total(x, y):\n    return x + y")
    assert passes_tests(ADD, "def total(p, q):\n    return q + p")  # BLEU would score this low
    assert passes_tests(SUBTRACT, "def f(a, b):\n    return a - b")


@pytest.mark.parametrize("answer, why", [
    ("def total(x, y):\n    return x * y", "another operation"),
    ("def total(x, y):\n    return x - y", "another operation"),
    ("def add(x, y):\n    return x + y", "another name: total is undefined"),
    ("def total(x, y):\n    print(x + y)", "prints instead of returning"),
    ("def total(x, y):\n    return x + y + 0.0", "a float where an int is due"),
    ("", "no answer"),
])
def test_a_plausible_wrong_function_fails(answer, why):
    assert passes_tests(ADD, answer) is False, why


def test_subtraction_must_keep_the_order():
    assert passes_tests(SUBTRACT, "def f(a, b):\n    return b - a") is False


def test_a_right_loop_passes_and_wrong_bounds_fail():
    assert passes_tests(LOOP, "for i in range(2, 6):\n    print(i)")
    assert passes_tests(LOOP, "for k in [2, 3, 4, 5]:\n    print(k)")
    assert passes_tests(LOOP, "for i in range(2, 5):\n    print(i)") is False  # stops one short
    assert passes_tests(LOOP, "for i in range(1, 6):\n    print(i)") is False  # starts one early
    assert passes_tests(LOOP, "for i in range(2, 6):\n    print(i, end=' ')") is False  # one line, not four


def test_the_tests_come_from_the_question():
    test = code_test_for("Write a Python function mul that multiplies n and s.")
    assert test.check.startswith("print(repr(mul(")
    assert test.expected_stdout.splitlines() == [repr(a * b) for a, b in execution._ARGUMENTS]
    assert code_test_for("Write a loop over n that prints the numbers from 0 to 2.").expected_stdout == "0\n1\n2\n"
    assert code_test_for("Reverse the letters.") is None
    assert code_test_for("Write the alphabet from a to d.") is None
    assert passes_tests("Write one line about the film.", "the film was great and funny .") is None


def test_an_infinite_loop_times_out_within_the_limit():
    start = time.perf_counter()
    outcome = run_program("while True:\n    pass", CodeTest("", ""), timeout_s=1.0)
    assert not outcome.passed and outcome.reason == "timeout"
    assert time.perf_counter() - start < 5.0


@pytest.mark.skipif(os.name != "posix", reason="process groups are POSIX")
def test_a_timeout_also_ends_what_the_program_started():
    # the child keeps the output pipes open; without killing the whole group, collecting the output would hang
    source = "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n" \
             "while True:\n    pass"
    start = time.perf_counter()
    outcome = run_program(source, CodeTest("", ""), timeout_s=1.0)
    assert outcome.reason == "timeout"
    assert time.perf_counter() - start < 10.0


def test_a_syntax_error_fails_with_its_message():
    outcome = run_program("def total(x, y)\n    return x + y", code_test_for(ADD))
    assert not outcome.passed and outcome.reason == "error" and "SyntaxError" in outcome.stderr


def test_a_crash_fails_and_wrong_output_is_told_apart():
    assert run_program("raise SystemExit(3)", CodeTest("", "")).reason == "error"
    assert run_program("print('no')", CodeTest("", "yes\n")).reason == "wrong output"
    assert run_program("print('yes')", CodeTest("", "yes\n")).passed


def test_the_callers_process_is_unharmed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cwd, environ = os.getcwd(), dict(os.environ)
    hostile = ("import os, sys\nopen('left_behind.txt', 'w').write('x')\nos.chdir(os.path.dirname(os.getcwd()))\n"
               "os.environ['LABHELPERS_EXEC_PROBE'] = '1'\nsys.exit(0)")
    outcome = run_program(hostile, CodeTest("", ""))
    assert outcome.passed  # it ran, exited 0 and printed nothing, as the empty test asks
    assert os.getcwd() == cwd and dict(os.environ) == environ
    assert not (tmp_path / "left_behind.txt").exists()  # it ran in a temporary folder, since removed
    outcome = run_program("import os\nos._exit(1)", CodeTest("", ""))
    assert outcome.reason == "error"


def test_pass_rate_counts_only_code_questions():
    rate = pass_rate([ADD, LOOP, "Reverse the letters."],
                     ["def total(x, y):\n    return x + y", "for i in range(2, 5):\n    print(i)", "c b a"])
    assert rate == {"passed": 1, "total": 2, "rate": 0.5}
    assert pass_rate(["Reverse the letters."], ["c b a"])["rate"] is None
