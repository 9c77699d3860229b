<input type="hidden" name="csrf_token" value="{{csrf}}"><input type="hidden" name="back" value="{{get('back') or here}}">
