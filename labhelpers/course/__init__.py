"""The course's tools, for instructors and CI: not imported by any lab.

* :mod:`labhelpers.course.cli`        the ``labhelpers`` command (``run``, ``rehearse``, ``grade``, ``student``, ...)
* :mod:`labhelpers.course.runner`     headless execution of the labs, the one loop over them, where the labs are
* :mod:`labhelpers.course.rehearsal`  the full profile rehearsed offline with random stand-ins at real sizes
* :mod:`labhelpers.course.grading`    a gradebook from executed notebooks, reruns in a sandbox
* :mod:`labhelpers.course.points`     points per check (the grader's alone)
* :mod:`labhelpers.course.student`    student versions, without the solutions
* :mod:`labhelpers.course.generated`  every generated block of the notebooks and the README, with ``--check``;
  its parts: :mod:`labhelpers.course.setup_cell` (the setup cell), :mod:`labhelpers.course.hardware` (the figures)
* :mod:`labhelpers.course.timing`     GPU-aware step timing for the benchmarks

Most of it needs the ``[course]`` extra (papermill, nbclient, JupyterLab). The learner's library is the rest of
``labhelpers``; nothing there imports this package (``tests/test_floors.py`` checks).
"""
