"""gnnrl.scaler"""
