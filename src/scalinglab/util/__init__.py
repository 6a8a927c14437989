"""Small helpers with one job each: intervals, JSON, number formatting, BLAS threads."""
