"""dlatrack_engine.metrics"""
