"""duragent benchmarks: plain scripts with a common runner (``python -m benchmarks.run``).

Each ``bench_*.py`` module has ``run(mode, workdir) -> list[Result]`` and can be run alone with
``python -m benchmarks.bench_step`` (quick mode) or ``--full``. Nothing here is a pytest test."""
