"""Trust and safety figures of runs and recommenders: fairness (user and provider side,
counterfactual probing of LLM recommenders), explanation faithfulness and privacy
(attribute inference from traces). docs/trust.md says how to run and read them."""

__all__: list[str] = []
