"""dlatrack_engine.models"""
