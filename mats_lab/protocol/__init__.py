"""The trial contract: what crosses the boundary between the sweep and a trial process, and
what the report reads back. Both sides of the subprocess and the report import this package;
it imports no other layer of the project, and nothing heavier than pydantic and PyYAML.

- :mod:`~mats_lab.protocol.spec` the study file schema (``StudySpec``, ``load_study``);
- :mod:`~mats_lab.protocol.knobs` the knob registry: every alias a study may set, its type,
  allowed values and meaning (checked by the study schema, applied by the trial side);
- :mod:`~mats_lab.protocol.records` the stage spec, stage result and progress line records,
  each with a format version, and the one reader and writer of each file;
- :mod:`~mats_lab.protocol.layout` the study folder and stage work dir layout, default stores;
- :mod:`~mats_lab.protocol.names` Optuna user attribute, MLflow tag and metric names;
- :mod:`~mats_lab.protocol.exits` the exit statuses of a stage process.
"""
