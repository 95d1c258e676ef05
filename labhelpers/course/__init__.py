"""The course's tools, for instructors and CI: not imported by any lab.

* :mod:`labhelpers.course.cli`        the ``labhelpers`` command (``run``, ``rehearse``, ``grade``, ``student``, ...)
* :mod:`labhelpers.course.runner`     headless execution of the labs
* :mod:`labhelpers.course.rehearsal`  the full profile rehearsed offline with random stand-ins at real sizes
* :mod:`labhelpers.course.grading`    a gradebook from executed notebooks, reruns in a sandbox
* :mod:`labhelpers.course.points`     points per check (the grader's alone)
* :mod:`labhelpers.course.student`    student versions, without the solutions
* :mod:`labhelpers.course.setup_cell`, :mod:`labhelpers.course.hardware`  generated text in the notebooks and README
* :mod:`labhelpers.course.timing`     GPU-aware step timing for the benchmarks

Most of it needs the ``[course]`` extra (papermill, nbclient, JupyterLab). The learner's library is the rest of
``labhelpers``; nothing there imports this package (``tests/test_floors.py`` checks).
"""
