"""dlatrack_engine.avatar"""
