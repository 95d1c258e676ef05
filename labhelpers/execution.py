"""Run generated Python against tests: an execution-based measure for code answers, beside BLEU.

BLEU counts n-grams shared with a reference; it never runs the code, so ``def add(x, y): return y + x`` scores
low against ``def add(a, b): return a + b`` although both add. Here each program runs in its own Python process
(``sys.executable -I``: isolated mode, no user site-packages, no ``PYTHON*`` variables) in a fresh temporary
folder, with a timeout. A program that loops forever, crashes, fails to parse or prints the wrong thing fails
its test; it never stops or changes the caller. This is a measure, not a sandbox: the program runs as the
caller's user, so run only code you would run yourself (lab 01 runs its own tiny model's answers).

For lab 01's code tasks the tests come from the question itself (:func:`code_test_for`):

* ``"Write a Python function NAME that VERB A and B."``: call ``NAME`` on a few number pairs and compare with
  the operation the verb names;
* ``"Write a loop over V that prints the numbers from L to H."``: run the answer and compare what it prints with
  the numbers ``L`` to ``H``, one per line.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIMEOUT_S = 2.0  # a right answer to a lab 01 task runs in a few milliseconds after the interpreter starts

_FUNCTION_QUESTION = re.compile(r"^Write a Python function (\w+) that (adds|multiplies|subtracts) (\w+) and (\w+)\.$")
_LOOP_QUESTION = re.compile(r"^Write a loop over (\w+) that prints the numbers from (-?\d+) to (-?\d+)\.$")
_OPERATIONS = {"adds": lambda a, b: a + b, "multiplies": lambda a, b: a * b, "subtracts": lambda a, b: a - b}
# pairs on which +, - and * all differ (and a - b differs from b - a), so a wrong operation or order fails
_ARGUMENTS = [(2, 3), (7, -4), (0, 5), (10, 6)]


@dataclass(frozen=True)
class CodeTest:
    """One test of a program: the code run after it (may be empty) and the standard output it must print."""

    check: str
    expected_stdout: str


@dataclass(frozen=True)
class Outcome:
    """What running a program against a test gave: ``passed``, and why not (``"timeout"``, ``"error"``,
    ``"wrong output"``) with the end of its standard error."""

    passed: bool
    reason: str = ""
    stderr: str = ""


def code_test_for(instruction: str) -> CodeTest | None:
    """The test of one of lab 01's code questions (``None`` for a question that is not a code task)."""
    function = _FUNCTION_QUESTION.match(instruction.strip())
    if function:
        name, verb = function.group(1), function.group(2)
        calls = "\n".join(f"print(repr({name}({a}, {b})))" for a, b in _ARGUMENTS)
        expected = "".join(f"{_OPERATIONS[verb](a, b)!r}\n" for a, b in _ARGUMENTS)
        return CodeTest(check=calls, expected_stdout=expected)
    loop = _LOOP_QUESTION.match(instruction.strip())
    if loop:
        low, high = int(loop.group(2)), int(loop.group(3))
        return CodeTest(check="", expected_stdout="".join(f"{i}\n" for i in range(low, high + 1)))
    return None


def run_program(source: str, test: CodeTest, timeout_s: float = DEFAULT_TIMEOUT_S) -> Outcome:
    """Run ``source`` followed by ``test.check`` in a new isolated Python process in an empty temporary folder.

    Passed when the process exits with status 0 within ``timeout_s`` seconds and prints exactly
    ``test.expected_stdout`` (line endings normalised). Nothing the program does raises here.
    """
    program = source + "\n\n" + test.check + "\n"
    with tempfile.TemporaryDirectory(prefix="labhelpers-exec-") as folder:
        path = Path(folder) / "answer.py"
        path.write_text(program, encoding="utf-8")
        # a session of its own, so that a timeout kills what the program started too: a child left holding the
        # output pipes would keep communicate() waiting
        process = subprocess.Popen([sys.executable, "-I", str(path)], cwd=folder, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                                   errors="replace", start_new_session=os.name == "posix")
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill(process)
            _, stderr = process.communicate()
            return Outcome(False, "timeout", _tail(stderr))
    if process.returncode != 0:
        return Outcome(False, "error", _tail(stderr))
    if stdout.replace("\r\n", "\n") != test.expected_stdout:
        return Outcome(False, "wrong output", _tail(stderr))
    return Outcome(True)


def _kill(process: subprocess.Popen) -> None:
    if os.name == "posix":
        try:
            os.killpg(process.pid, signal.SIGKILL)
            return
        except ProcessLookupError:  # the group is gone already
            return
    process.kill()


def passes_tests(instruction: str, answer: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool | None:
    """Whether ``answer`` passes the test derived from the code question ``instruction``; ``None`` when the
    question is not one of lab 01's code tasks."""
    test = code_test_for(instruction)
    return None if test is None else run_program(answer, test, timeout_s).passed


def pass_rate(instructions: list[str], answers: list[str], timeout_s: float = DEFAULT_TIMEOUT_S) -> dict:
    """The share of code answers that pass their tests, over the questions that are code tasks.

    Returns ``{"passed", "total", "rate"}`` (``rate`` is ``None`` when no question is a code task).
    """
    results = [passes_tests(i, a, timeout_s) for i, a in zip(instructions, answers)]
    scored = [r for r in results if r is not None]
    return {"passed": sum(scored), "total": len(scored), "rate": sum(scored) / len(scored) if scored else None}


def _tail(text: str | None, limit: int = 500) -> str:
    return (text or "")[-limit:]


__all__ = ["CodeTest", "DEFAULT_TIMEOUT_S", "Outcome", "pass_rate", "passes_tests", "run_program",
           "code_test_for"]
