"""Running a job without the command line: pipeline steps and what they do to pixels
(:mod:`~convcli.jobs.pipeline`), planning outputs for a batch
(:mod:`~convcli.jobs.batch`), reports (:mod:`~convcli.jobs.report`) and the per-file job
(:mod:`~convcli.jobs.run`), which a Dask worker imports as well as the command line.
"""
