"""Dataset preparation: benchmark and training sets in verl's parquet format (``verl-focal data``)."""
