"""mobilize's device side: push a model to a phone, run the benchmark app, bring back figures."""
