# What the schema holds now: its table count, then its state (the schema's comment).
table_count
deployment_state
