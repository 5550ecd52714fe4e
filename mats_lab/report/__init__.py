"""``mats-lab report``: study results as tables, figures and an index page.

Three layers, one way: collect (:mod:`.sources`, :mod:`.stores`, :mod:`.collect`: the only
readers of the MLflow and Optuna stores) -> summarise (:mod:`.summarise`, :mod:`.figures`: pure
pandas) -> render (:mod:`.tables`, :mod:`.plots`, :mod:`.pages`, :mod:`.index`; the token
picture through :mod:`.tokens`, a ``show-tokens`` subprocess). :mod:`.build` runs them. Nothing
here imports torch or the mm* libraries.
"""
