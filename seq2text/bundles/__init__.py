"""Model bundles (one copyable directory per trained model) and what is done to them as files: io, hub,
compression, averaging, plot. Nothing here imports the training side (tasks, data modules, Lightning)."""
