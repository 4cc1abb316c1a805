"""The reading side: how text (and numbers) become ids, for training and for prediction alike. No Lightning and
no other seq2text layer is imported here (only `seq2text.errors`).

    tokenizer.py   the SentencePiece tokenizer (the only importer of sentencepiece) and the special ids
    reading.py     one frozen reading spec per task (`LMReading`, `ClassifierReading`, `TranslationReading`), the
                   text readers, encoders, padding and the one length-bucketing batcher
    series.py      the same for numbers: `SeriesReading`, the checked table reader, window features
    textio.py      strict UTF-8 reading and the one atomic writer
    prepared.py    prepared caches: a corpus tokenized once into memory-mapped token files
    vectors.py     in-domain word vectors (PPMI-SVD) and the word2vec text format
"""
