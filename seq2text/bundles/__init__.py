"""Model bundles: one copyable directory per trained model, and what is done to bundles as files. Nothing here
imports the training side (tasks, data modules, Lightning).

    io.py            writing and reading a bundle (config.json, model.safetensors, tokenizer.model, metrics.json)
    hub.py           bundles on the Hugging Face Hub (hf:// addresses, model cards, push)
    compression.py   int8, fp16 and bf16 bundles (`seq2text compress`), and the int8 network at load
    averaging.py     checkpoint averaging into a bundle (`seq2text average`)
    plot.py          pictures: a run's training curves, a translation's attention (`seq2text plot`)
"""
