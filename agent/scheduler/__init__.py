"""The desk's scheduler: APScheduler 3 with the MongoDB job store, one leader per deployment (a lock in Mongo).

Jobs are declared by their owners as `JobSpec`s (briefings per channel, model retraining, news ingestion); the
leader keeps the job store in step with them. Job functions are referenced by text, so a job survives a restart.
"""
