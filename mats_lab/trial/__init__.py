"""The trial side: the process that trains one stage of a sweep trial, and the tools that run
a model outside a sweep (MAC counting, the token picture, the benchmark).

- :mod:`~mats_lab.trial.stage_run` reads a stage spec, applies the knobs, trains (resuming),
  tests and writes the stage result (the records of :mod:`mats_lab.protocol.records`);
- :mod:`~mats_lab.trial.distributed` runs a stage of ``nprocs > 1`` as one rank per device
  under ``torch.distributed.run`` (loopback only; gloo on CPU, nccl on CUDA);
- :mod:`~mats_lab.trial.lr` is the starting LR: the recipe's base scaled with the total batch;
- :mod:`~mats_lab.trial.preflight` resolves every stage of a study without training, so a
  sweep refuses a bad config, key or knob value before its first trial starts;
- :mod:`~mats_lab.trial.knobs` applies the knob registry's values to a loaded config;
- :mod:`~mats_lab.trial.configs` loads configs with overrides that cannot silently miss;
- :mod:`~mats_lab.trial.flops` counts multiply-accumulates;
- :mod:`~mats_lab.trial.token_view` / :mod:`~mats_lab.trial.token_picture` draw the kept tokens;
- :mod:`~mats_lab.trial.bench` is ``mats-lab bench``.

It imports :mod:`mats_lab.protocol`, :mod:`mats_lab.mm` (and through it models and core),
torch and mmengine; never :mod:`mats_lab.lab` or :mod:`mats_lab.report`, which talk to it only
through files and subprocesses.
"""
