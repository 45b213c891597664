"""INT8: calibration sets, NNCF PTQ/QAT with the decode kept in float, INT8 exports and reports."""
